"""Deterministic sample corpus in the real on-disk formats of AMI, AVA-ActiveSpeaker, VoxCeleb2,
Friends-MMC and YouTube (see ``generate.py`` for the CLI and docs/design.md §9 for why).

Modules, one purpose each: ``identities`` (who), ``lines`` (what they say), ``speech`` (flite),
``dialogue`` (turn-taking and mixing), ``faces`` (real face crops, mouth opening), ``render``
(scene frames), ``media`` (PyAV writers), ``writers`` (annotation formats), ``plan`` (what the
corpus holds), ``scenes`` (one item end to end), ``generate`` (CLI and manifest).
"""
