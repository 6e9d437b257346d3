"""One RAFT step's loss: L = lambda_align * L_align - lambda_rro * J_RRO + alpha * L_temp.

Per prompt x with reference y*:
1. sample K candidates y_1..y_K from the policy (no gradient);
2. score all B x K candidates at once through the rollout (actor pool or serial);
3. one forward over [y*, y_1..y_K] of all B prompts (``train.batch_prompts``), each prompt once with its
   K + 1 continuations packed behind it (``train.share_prompt``, :mod:`raft.packing`), gives L_align = mean-token NLL of y*, log pi(y_k|x)
   for RRO (length-normalized per ``train.length_norm``), and the last-layer states of the
   reference row, from which f_a, f_v, f_t, f_r feed L_temp.
During the first ``train.sft_steps`` steps only L_align is computed (no sampling).

The function is independent of Ray Train and DeepSpeed, so the trainer, the benches and the
tests share it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from omni.processor import Encoded
from raft.config import TrainConfig
from raft.data import Prompt
from raft.model import OmniPolicy
from raft.rewards import RewardItem
from raft.rro import rro_loss, sequence_logprob
from raft.temporal import temporal_loss


@dataclass
class EncodedPrompt:
    prompt: Prompt
    enc: Encoded
    span_s: float  # seconds of the clip the encoders saw (the time grid's extent)
    ref_ids: list[int]


def encode_prompt(policy: OmniPolicy, prompt: Prompt, audio, frames, cfg: TrainConfig) -> EncodedPrompt:
    """The evaluator's messages with the clip's media, encoded as the evaluator's policy adapter does."""
    enc = policy.processor.encode_chat(prompt.messages, audio, frames, prompt.transcript_lines)
    span = min(float(prompt.clip["end_s"]) - float(prompt.clip["start_s"]), cfg.max_audio_s)
    return EncodedPrompt(prompt, enc, span, policy.reference_ids(prompt.reference)[: 4 * cfg.max_new_tokens])


def reward_item(p: Prompt, text: str) -> RewardItem:
    s = p.sample
    return RewardItem(
        sample_id=s["sample_id"], task=s["task"], clip_ids=list(s["clip_ids"]), text=text, sample=s,
        options=list(s.get("options") or []), answer=s.get("answer") or "",
        answer_intervals=[(i["start"], i["end"]) for i in (s.get("answer_intervals") or [])],
        references=list(s.get("references") or []), question=s.get("question") or "",
    )


def _pad_time(feats: list[dict], masks: list[dict]) -> tuple[dict, dict]:
    t_max = max(f["a"].shape[0] for f in feats)
    out_f, out_m = {}, {}
    for k in "avtr":
        out_f[k] = torch.stack([torch.nn.functional.pad(f[k], (0, 0, 0, t_max - f[k].shape[0])) for f in feats])
        out_m[k] = torch.stack([torch.nn.functional.pad(m[k], (0, t_max - m[k].shape[0])) for m in masks])
    return out_f, out_m


def sample_candidates(policy: OmniPolicy, batch: list[EncodedPrompt], cfg: TrainConfig, engine=None):
    """K candidates per prompt from the rollout ``engine`` (default: the policy, ``raft.rollout_engine.HFEngine``):
    token ids and decoded texts."""
    from raft.rollout_engine import HFEngine

    engine = engine or HFEngine(policy, cfg)
    ids = engine.generate([ep.enc for ep in batch], cfg.k, cfg.max_new_tokens, cfg.temperature, cfg.top_p)
    texts = [[policy.decode(c) for c in cands] for cands in ids]
    return ids, texts


def raft_loss(policy: OmniPolicy, batch: list[EncodedPrompt], cfg: TrainConfig, rollout, sft: bool = False,
              engine=None, ref_policy: OmniPolicy | None = None) -> tuple[torch.Tensor, dict]:
    m: dict[str, float] = {}
    t0 = time.perf_counter()
    use_rro = not sft and cfg.lambda_rro > 0
    cand_ids: list[list[list[int]]] = [[] for _ in batch]
    rewards = None
    if use_rro:
        cand_ids, texts = sample_candidates(policy, batch, cfg, engine)
        m["time/generate_s"] = time.perf_counter() - t0
        m["gen/tokens"] = float(sum(len(c) for cs in cand_ids for c in cs))
        t1 = time.perf_counter()
        items = [reward_item(ep.prompt, t) for ep, ts in zip(batch, texts, strict=True) for t in ts]
        results = rollout.score(items)
        m["time/reward_s"] = time.perf_counter() - t1
        dev = next(policy.model.parameters()).device  # rewards are computed on the host; RRO runs beside log pi
        rewards = torch.tensor([r.total for r in results], device=dev).view(len(batch), cfg.k)
        m["reward/parse_rate"] = sum(r.parse_ok for r in results) / len(results)
        for name in results[0].components:
            vals = [r.components[name] for r in results if r.components.get(name) is not None]
            m[f"reward/{name}"] = sum(vals) / len(vals) if vals else 0.0
    loss, lm = candidates_loss(policy, batch, cand_ids, rewards, cfg, ref_policy)
    m.update(lm)
    return loss, m


def candidates_loss(policy: OmniPolicy, batch: list[EncodedPrompt], cand_ids: list[list[list[int]]],
                    rewards: torch.Tensor | None, cfg: TrainConfig, ref_policy: OmniPolicy | None = None
                    ) -> tuple[torch.Tensor, dict]:
    """L given the sampled candidates and their (B, K) rewards (None: no RRO term, as in SFT steps):
    the scoring forward and the three terms (plus ``train.kl_coef`` x KL to ``ref_policy``).
    Deterministic, so the scoring layouts compare on it."""
    m: dict[str, float] = {}
    use_rro = rewards is not None
    t2 = time.perf_counter()
    nlls, seq_lps, feats, masks = [], [], [], []
    scored = policy.score_batch([ep.enc for ep in batch], [[ep.ref_ids, *c] for ep, c in zip(batch, cand_ids,
                                strict=True)], batched=cfg.batch_prompts, shared=cfg.share_prompt)
    for ep, sc in zip(batch, scored, strict=True):
        nlls.append(-sequence_logprob(sc.token_logprobs[:1], sc.mask[:1], "mean")[0])
        if use_rro:
            seq_lps.append(sequence_logprob(sc.token_logprobs[1:], sc.mask[1:], cfg.length_norm))
        if cfg.alpha > 0:
            # The reference's intervals are clip-relative already, the time base of the grid (no shift).
            ivs = ep.prompt.reference_intervals()
            f, mk = policy.time_features(ep.enc, sc.row_hidden(0), ep.span_s, cfg.grid_hop_s, len(ep.ref_ids), ivs)
            feats.append(f)
            masks.append(mk)
    l_align = torch.stack(nlls).mean()
    loss = cfg.lambda_align * l_align
    m["loss/align"] = l_align.item()
    if use_rro:
        neg_j, stats = rro_loss(torch.stack(seq_lps), rewards, cfg.beta, cfg.rro_skip_tied, cfg.rro_tie_tol,
                                cfg.rro_weighting)
        loss = loss + cfg.lambda_rro * neg_j
        m["loss/rro"] = neg_j.item()
        m.update(stats)
    if use_rro and cfg.kl_coef > 0:
        if ref_policy is None:
            raise ValueError("train.kl_coef > 0 needs the frozen reference policy (ref_policy)")
        kl = candidates_kl(scored, ref_policy, batch, cand_ids, cfg)
        loss = loss + cfg.kl_coef * kl
        m["loss/kl"] = kl.item()
    if cfg.alpha > 0:
        f, mk = _pad_time(feats, masks)
        l_temp, tstats = temporal_loss(f, mk, cfg.gamma, cfg.delta, cfg.temporal_reduction, cfg.temporal_norm)
        loss = loss + cfg.alpha * l_temp
        m["loss/temp"] = l_temp.item()
        m.update(tstats)
    m["loss/total"] = loss.item()
    m["time/forward_s"] = time.perf_counter() - t2
    return loss, m


def candidates_kl(scored, ref_policy: OmniPolicy, batch: list[EncodedPrompt], cand_ids, cfg: TrainConfig
                  ) -> torch.Tensor:
    """Mean over the candidates' tokens of the k3 estimate of KL(pi || pi_ref): exp(d) - d - 1 with
    d = log pi_ref - log pi (non-negative, unbiased, low variance; verl's low_var_kl)."""
    with torch.no_grad():
        ref = ref_policy.score_batch([ep.enc for ep in batch], [[ep.ref_ids, *c] for ep, c in zip(batch, cand_ids,
                                     strict=True)], batched=cfg.batch_prompts, shared=cfg.share_prompt)
    num, den = 0.0, 0.0
    for sc, rs in zip(scored, ref, strict=True):
        mask = sc.mask[1:]
        d = (rs.token_logprobs[1:] - sc.token_logprobs[1:]).clamp(-20, 20)
        num = num + ((torch.exp(d) - d - 1) * mask).sum()
        den += float(mask.sum())
    return num / max(den, 1.0)
