"""The Qwen2.5-Omni model adapter shared by training (raft) and evaluation (eval): the processor
that builds the thinker's inputs, the checkpoint loader, and a small inference ``Policy``.

It sits below eval and raft in the layer order and imports neither (tests/test_layers.py)."""
