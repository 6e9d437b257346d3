"""The Qwen2.5-Omni thinker adapter on the tiny model: encode, generate, log-probs, features, reload."""

import numpy as np
import pytest
import torch

from raft.data import build_prompt, load_media, load_tables
from raft.model import OmniPolicy
from raft.objective import encode_prompt


@pytest.fixture(scope="module")
def encoded(policy, train_cfg, dataset):
    samples, clips = load_tables(train_cfg, *dataset)
    stg = next(s for s in samples if s["task"] == "STG")
    prompt = build_prompt(stg, clips, "guided")
    audio, frames = load_media(prompt.clip, train_cfg)
    return encode_prompt(policy, prompt, audio, frames, train_cfg)


def test_encodes_audio_frames_and_transcript(encoded, policy, train_cfg):
    ids = encoded.enc.inputs["input_ids"][0]
    n_audio = int((ids == policy.processor.ids["<|AUDIO|>"]).sum())
    assert n_audio == len(encoded.enc.audio_times) == pytest.approx(train_cfg.max_audio_s * 25, abs=2)
    assert len(encoded.enc.image_times) == train_cfg.num_frames
    assert len(encoded.enc.text_spans) == 2  # the two transcript lines of the clip


def test_generate_k_candidates_without_placeholders(encoded, policy):
    torch.manual_seed(0)
    cands = policy.generate(encoded.enc, 4, 12)
    assert len(cands) == 4 and all(0 < len(c) <= 12 for c in cands)
    assert not set(policy.suppress_ids) & {t for c in cands for t in c}


def test_logprobs_match_full_forward(encoded, policy):
    conts = [policy.reference_ids("answer: B"), policy.reference_ids("plan: diarize\nanswer: [[1.0, 2.0]]")]
    with torch.no_grad():
        sc = policy.score(encoded.enc, conts)
        for i, c in enumerate(conts):
            inputs = dict(encoded.enc.inputs)
            inputs["input_ids"] = torch.cat([inputs["input_ids"], torch.tensor([c])], 1)
            inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
            logits = policy.model(**inputs).logits[0, encoded.enc.length - 1 : -1]
            want = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(c)[:, None]).squeeze(-1)
            assert torch.allclose(sc.token_logprobs[i, : len(c)], want, atol=1e-4)
            assert sc.mask[i].sum() == len(c)


def test_time_features_on_shared_grid(encoded, policy, train_cfg):
    with torch.no_grad():
        sc = policy.score(encoded.enc, [encoded.ref_ids])
    f, m = policy.time_features(encoded.enc, sc.hidden[0], 4.0, 1.0, len(encoded.ref_ids), [(2.1, 3.8)])
    assert all(v.shape == (4, sc.hidden.shape[-1]) for v in f.values())
    assert m["a"].tolist() == [1, 1, 1, 1] and m["v"].tolist() == [1, 1, 1, 1]
    assert m["t"].tolist() == [1, 1, 1, 1]  # lines cover 0.2-1.8 and 2.1-3.8
    assert m["r"].tolist() == [0, 0, 1, 1]  # the reference claims 2.1-3.8
    ids = encoded.enc.inputs["input_ids"][0]
    audio_pos = (ids == policy.processor.ids["<|AUDIO|>"]).nonzero().flatten()
    first_bin = [p for p, t in zip(audio_pos.tolist(), encoded.enc.audio_times, strict=True) if t < 1.0]
    assert torch.allclose(f["a"][0], sc.hidden[0, first_bin].mean(0), atol=1e-5)


def test_save_and_from_pretrained_roundtrip(encoded, policy, tmp_path):
    policy.save_pretrained(tmp_path)
    again = OmniPolicy.from_pretrained(tmp_path)
    conts = [policy.reference_ids("answer: A")]
    with torch.no_grad():
        a = policy.score(encoded.enc, conts).token_logprobs
        b = again.score(encoded.enc, conts).token_logprobs
    assert torch.allclose(a, b)
    assert again.processor.encode_text("answer: A") == policy.processor.encode_text("answer: A")
    assert np.array_equal(again.processor.audio_features(np.zeros(16000))[0].numpy(),
                          policy.processor.audio_features(np.zeros(16000))[0].numpy())
