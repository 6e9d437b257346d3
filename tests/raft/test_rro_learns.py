"""RRO *learns*: on a toy problem small enough for CI, pure RRO (no L_align, so no label enters the
loss) raises the held-out reward clearly above the warm start, on each of 3 seeds.

Toy: the prompt ends with a key word, "yes" or "no"; the reply should be "A" for yes, "B" for no
(reward 1, else 0). Warm start: a few SFT steps on the tiny random Qwen2.5-Omni thinker whose
reference letter is drawn at random, independent of the key, so the policy answers A or B about half
the time each whatever the prompt: held-out reward near 0.5 and reward spread in the K-groups. The
only way up is to read the key word, so a held-out rise means the policy learnt the prompt -> answer
mapping from its own samples. Held-out prompts share no filler word with the training ones. The
held-out reward is exact: the probability the sampler gives the right letter as the first token.

Everything but the reward is the project's: candidates from ``raft.objective.sample_candidates``, the
loss from ``raft.objective.candidates_loss`` (scoring forward + ``raft.rro.rro_loss`` with the
registered ``softmax`` weighting, beta 5). Checked by hand that it fails when RRO is broken: uniform
weights (beta 0) and a flipped reward sign both end below the warm start on every seed (0.13-0.18
and 0.00 from 0.47-0.49).
"""

from __future__ import annotations

import copy
import dataclasses
import random
from dataclasses import replace

import pytest
import torch

from raft.config import SRAConfig
from raft.model import OmniPolicy
from raft.objective import EncodedPrompt, candidates_loss, sample_candidates
from raft.sra import apply_sra

KEYS = ("yes", "no")  # -> answer "A", "B"; one token each in the tiny BPE
TRAIN_WORDS = "red blue green cat dog sun moon tree stone river bird fish".split()
HELD_OUT_WORDS = "chair table lamp door road cloud rain snow wind leaf".split()
WARM_STEPS, WARM_LR, STEPS, BATCH, K, LR, BETA, MARGIN = 15, 0.01, 40, 8, 4, 0.005, 5.0, 0.25


def _prompts(policy: OmniPolicy, words: list[str], n: int, seed: int) -> list[tuple[EncodedPrompt, int]]:
    """(prompt, index of the right letter) pairs, keys alternating. The key closes the prompt, after the
    assistant header (as a forced reply prefix would): a random 2-layer model barely attends yet, so a
    key further back would leave its last state, and the answer, the same for both keys."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        enc = policy.processor.encode_chat([{"role": "user", "content": " ".join(rng.sample(words, 2))}])
        key = torch.tensor([policy.processor.encode_text(f" {KEYS[i % 2]}")])
        ids = torch.cat([enc.inputs["input_ids"], key], 1)
        enc = dataclasses.replace(enc, inputs={"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        out.append((EncodedPrompt(prompt=None, enc=enc, span_s=0.0, ref_ids=[]), i % 2))
    return out


@torch.no_grad()
def held_out_reward(policy: OmniPolicy, data: list[tuple[EncodedPrompt, int]], letters: list[int]) -> float:
    """Mean over prompts of P(first reply token is the right letter), as the sampler sees it."""
    policy.model.eval()
    vals = []
    for ep, right in data:
        logits = policy.model(**policy.to_model(dict(ep.enc.inputs))).logits[0, -1].float()
        logits[list(policy.suppress_ids)] = -float("inf")
        vals.append(float(logits.softmax(-1)[letters[right]]))
    policy.model.train()
    return sum(vals) / len(vals)


def _step(pol: OmniPolicy, opt, loss) -> None:
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in pol.model.parameters() if p.requires_grad], 1.0)
    opt.step()


def rro_run(base: OmniPolicy, cfg, seed: int, sign: float = 1.0) -> tuple[float, float]:
    """(held-out reward at the warm start, after STEPS of pure RRO) for one seed."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    pol = OmniPolicy(copy.deepcopy(base.model), base.processor)
    pol.model, _ = apply_sra(pol.model, SRAConfig(method="full"))
    letters = [pol.processor.encode_text(x)[0] for x in ("A", "B")]
    train, held = _prompts(pol, TRAIN_WORDS, 32, seed), _prompts(pol, HELD_OUT_WORDS, 16, 100 + seed)
    opt = torch.optim.AdamW([p for p in pol.model.parameters() if p.requires_grad], lr=WARM_LR)
    # warm start: L_align only, on a letter drawn independently of the key (the answer format, no skill)
    sft = replace(cfg, lambda_align=1.0)
    for _ in range(WARM_STEPS):
        batch = [replace(ep, ref_ids=pol.reference_ids(rng.choice("AB"))) for ep, _ in rng.sample(train, BATCH)]
        _step(pol, opt, candidates_loss(pol, batch, [[] for _ in batch], None, sft)[0])
    before = held_out_reward(pol, held, letters)
    opt = torch.optim.AdamW([p for p in pol.model.parameters() if p.requires_grad], lr=cfg.lr)
    for _ in range(STEPS):
        batch = rng.sample(train, BATCH)
        eps = [ep for ep, _ in batch]
        ids, _ = sample_candidates(pol, eps, cfg)
        r = torch.tensor([[sign * float(bool(c) and c[0] == letters[right]) for c in cands]
                          for (_, right), cands in zip(batch, ids, strict=True)])
        _step(pol, opt, candidates_loss(pol, [replace(ep, ref_ids=[letters[0]]) for ep in eps], ids, r, cfg)[0])
    return before, held_out_reward(pol, held, letters)


@pytest.fixture(scope="module")
def rro_cfg(train_cfg):
    # pure RRO with the paper's softmax weighting; no L_align, no L_temp (the reference row is still scored by
    # candidates_loss, but with lambda_align 0 it weighs nothing). beta 5, not the default 1: with 0/1 rewards
    # and K 4, beta 1 moves the weights only from 0.25 to 0.17-0.36, too little signal for 30 steps
    return replace(train_cfg, k=K, max_new_tokens=2, lambda_align=0.0, alpha=0.0, lr=LR, beta=BETA)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rro_raises_held_out_reward_above_the_warm_start(policy, rro_cfg, seed):
    assert rro_cfg.rro_weighting == "softmax" and rro_cfg.lambda_align == 0.0
    before, after = rro_run(policy, rro_cfg, seed)
    print(f"seed {seed}: held-out reward {before:.3f} -> {after:.3f}")
    assert 0.25 < before < 0.75, f"the warm start should answer A or B without skill, got {before:.3f}"
    assert after > before + MARGIN, f"seed {seed}: held-out reward {before:.3f} -> {after:.3f}"
