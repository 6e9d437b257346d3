"""Each prompt once per step (train.share_prompt): the packed scoring and the shared-prefill decoding give
what the copied-prompt path gives, loss and every trainable gradient included; time_features vectorised."""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from raft.config import SRAConfig
from raft.data import build_prompt, load_media, load_tables
from raft.model import OmniPolicy
from raft.objective import candidates_loss, encode_prompt
from raft.sra import apply_sra


@pytest.fixture(scope="module")
def batch(policy, train_cfg, dataset):
    """Three prompts with audio and 4 frames (different text lengths) plus one with a shorter clip and 2 frames."""
    samples, clips = load_tables(train_cfg, *dataset)
    out = []
    for s in samples[:3]:
        p = build_prompt(s, clips, "guided")
        out.append(encode_prompt(policy, p, *load_media(p.clip, train_cfg), train_cfg))
    p = build_prompt(samples[4], clips, "guided")
    audio, frames = load_media(p.clip, train_cfg)
    short = copy.copy(encode_prompt(policy, p, audio[: int(2.5 * 16000)], frames[:2], train_cfg))
    short.span_s = 2.5
    out.append(short)
    assert len({ep.enc.length for ep in out}) == 4
    return out


def test_loss_and_every_trainable_gradient_equal_the_copied_path(policy, train_cfg, batch):
    """SRA's default preset trains the audio projector, the vision merger's output layer and q/k/v of the top
    layer: all sit on the prompt's path, so the packed prompt must carry each continuation's gradient."""
    model, _ = apply_sra(copy.deepcopy(policy.model), SRAConfig())
    sra = OmniPolicy(model, policy.processor)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any("audio_tower.proj" in n for n in params) and any("visual.merger.mlp.2" in n for n in params)
    cands = [[[25, 26, 27], sra.reference_ids("answer: B"), [29]],
             [sra.reference_ids("plan: diarize\nanswer: [[1.0, 2.0]]"), [31, 32], [33, 34, 35, 36, 37]],
             [[40], [41, 42], sra.reference_ids("answer: A")],
             [[43, 44, 45, 46], [47], [48, 49]]]
    rewards = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.5, 0.5], [1.0, 1.0, 2.5], [0.2, 0.1, 0.0]])
    out = {}
    for shared in (False, True):
        cfg = replace(train_cfg, share_prompt=shared, alpha=0.5, k=3)
        loss, m = candidates_loss(sra, batch, cands, rewards, cfg)
        grads = torch.autograd.grad(loss, list(params.values()))
        out[shared] = (loss.item(), m, dict(zip(params, grads, strict=True)))
    (l0, m0, g0), (l1, m1, g1) = out[False], out[True]
    assert l1 == pytest.approx(l0, rel=1e-5)
    for key in ("loss/align", "loss/rro", "loss/temp"):
        assert m1[key] == pytest.approx(m0[key], rel=1e-5, abs=1e-7)
    for n in params:
        assert g0[n].abs().sum() > 0, n  # every trainable tensor is reached, so the comparison means something
        torch.testing.assert_close(g1[n], g0[n], rtol=1e-4, atol=1e-6, msg=n)


def test_shared_prefill_decodes_what_generate_decodes(policy, batch):
    encs = [ep.enc for ep in batch] + [policy.processor.encode("Who speaks next? A. Rachel B. Ross")]
    copied = policy.generate_batch(encs, 2, 10, greedy=True, shared=False)
    shared = policy.generate_batch(encs, 2, 10, greedy=True, shared=True)
    assert shared == copied
    torch.manual_seed(0)
    sampled = policy.generate_batch(encs, 3, 8, shared=True)
    assert [len(c) for c in sampled] == [3] * len(encs)
    flat = [c for cs in sampled for c in cs]
    assert all(0 < len(c) <= 8 for c in flat) and len({tuple(c) for c in flat}) > len(encs)  # rows differ
    assert not set(policy.suppress_ids) & {t for c in flat for t in c}


def _time_features_loop(policy, enc, hidden, span_s, hop_s, response_len, response_intervals):
    """The per-token loop time_features replaced (the reference the vectorised version must equal)."""
    ids = enc.inputs["input_ids"][0]
    p, d = enc.length, hidden.shape[-1]
    t_bins = max(1, int(round(span_s / hop_s)))
    feats = {k: torch.zeros(t_bins, d, dtype=hidden.dtype) for k in "avtr"}
    counts = {k: torch.zeros(t_bins) for k in "avtr"}

    def add(key, vec, t0, t1=None):
        b0 = int(t0 // hop_s)
        b1 = b0 + 1 if t1 is None else max(b0 + 1, int(-(-t1 // hop_s)))
        for b in range(max(b0, 0), min(b1, t_bins)):
            feats[key][b] = feats[key][b] + vec
            counts[key][b] += 1

    audio_pos = (ids == policy.processor.ids["<|AUDIO|>"]).nonzero().flatten()
    for pos, t in zip(audio_pos.tolist(), enc.audio_times.tolist(), strict=False):
        add("a", hidden[pos], t)
    image_pos = (ids == policy.processor.ids["<|IMAGE|>"]).nonzero().flatten()
    per = len(image_pos) // len(enc.image_times)
    for i, t in enumerate(enc.image_times):
        add("v", hidden[image_pos[i * per : (i + 1) * per]].mean(0), t)
    for a, b, t0, t1 in enc.text_spans:
        add("t", hidden[a:b].mean(0), t0, t1)
    r = hidden[p : p + response_len].mean(0)
    for t0, t1 in response_intervals or [(0.0, span_s)]:
        add("r", r, t0, t1)
    return ({k: feats[k] / counts[k].clamp(min=1).unsqueeze(-1) for k in "avtr"},
            {k: (counts[k] > 0).float() for k in "avtr"})


@pytest.mark.parametrize("hop_s, intervals", [(1.0, [(2.1, 3.8)]), (0.1, [(0.0, 1.0), (3.05, 9.0)]), (0.3, None)])
def test_vectorised_time_features_equal_the_loop(policy, batch, hop_s, intervals):
    ep = batch[1]
    enc = copy.copy(ep.enc)
    # frames at bin edges where float floor division and t / hop disagree (1.0 // 0.1 == 9.0)
    enc.image_times = [0.0, 1.0, 2.3, 3.9]
    hidden = torch.randn(enc.length + 6, 16, generator=torch.Generator().manual_seed(0))
    got_f, got_m = policy.time_features(enc, hidden, 4.0, hop_s, 5, intervals)
    want_f, want_m = _time_features_loop(policy, enc, hidden, 4.0, hop_s, 5, intervals)
    for k in "avtr":
        assert torch.equal(got_m[k], want_m[k]), k
        torch.testing.assert_close(got_f[k], want_f[k], rtol=1e-5, atol=1e-6, msg=k)
    assert got_m["a"].sum() > 0 and got_m["t"].sum() > 0 and np.isclose(float(got_m["r"].sum()), float(want_m["r"].sum()))
