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


@pytest.fixture(scope="module")
def mixed_prompts(policy, train_cfg, dataset, encoded):
    """Prompts of different text lengths, audio lengths and frame counts, plus a text-only one."""
    samples, clips = load_tables(train_cfg, *dataset)
    other = next(s for s in samples if s["task"] != "STG")
    prompt = build_prompt(other, clips, "guided")
    audio, frames = load_media(prompt.clip, train_cfg)
    short = policy.processor.encode(prompt.messages[1]["content"], "sys", audio[: int(2.5 * 16000)], frames[:2])
    text_only = policy.processor.encode("Who speaks next? A. Rachel B. Ross")
    encs = [encoded.enc, short, text_only, policy.processor.encode("Which scene? A. 1 B. 2 C. 3 D. 4 E. 5")]
    assert len({e.length for e in encs}) == 4
    assert short.inputs["input_features"].shape[-1] < encoded.enc.inputs["input_features"].shape[-1]
    return encs


def test_batched_generate_equals_per_prompt(policy, mixed_prompts):
    per = [policy.generate(e, 2, 10, greedy=True) for e in mixed_prompts]
    batched = policy.generate_batch(mixed_prompts, 2, 10, greedy=True, batched=True)
    assert batched == per
    assert all(len(c) == 2 and all(0 < len(x) <= 10 for x in c) for c in batched)
    # sampling: same shapes and the placeholder ban holds in the batched call too
    torch.manual_seed(0)
    sampled = policy.generate_batch(mixed_prompts, 3, 8)
    assert [len(c) for c in sampled] == [3] * 4
    assert not set(policy.suppress_ids) & {t for cs in sampled for c in cs for t in c}


def test_batched_score_equals_per_prompt(policy, mixed_prompts):
    conts = [[policy.reference_ids("answer: B"), [25, 26, 27]],
             [policy.reference_ids("plan: diarize\nanswer: [[1.0, 2.0]]")],
             [[29], policy.reference_ids("answer: A"), [31, 32, 33, 34, 35, 36, 37]],
             [policy.reference_ids("answer: C")]]
    with torch.no_grad():
        per = [policy.score(e, c) for e, c in zip(mixed_prompts, conts, strict=True)]
        batched = policy.score_batch(mixed_prompts, conts, batched=True)
    for a, b, c in zip(per, batched, conts, strict=True):
        w = a.mask.shape[1]
        assert b.prompt_len == a.prompt_len and b.token_logprobs.shape[0] == len(c)
        assert torch.equal(b.mask[:, :w], a.mask) and b.mask[:, w:].sum() == 0
        assert torch.allclose(b.token_logprobs[:, :w], a.token_logprobs, atol=1e-4)
        # hidden states of the prompt and the continuation line up after the left padding is cut off
        assert torch.allclose(b.hidden[:, : a.hidden.shape[1]], a.hidden, atol=1e-4)


def test_batched_loss_and_gradient_equal_per_prompt(policy, train_cfg, dataset):
    from dataclasses import replace

    from raft.objective import raft_loss
    from raft.rollout import SerialRollout, reward_settings

    samples, clips = load_tables(train_cfg, *dataset)
    batch = []
    for s in samples[:3]:
        p = build_prompt(s, clips, "guided")
        batch.append(encode_prompt(policy, p, *load_media(p.clip, train_cfg), train_cfg))
    rollout = SerialRollout({c["clip_id"]: c for c in clips.values()}, *reward_settings(train_cfg))
    params = [p for p in policy.model.parameters() if p.requires_grad]
    out = {}
    for flag in (False, True):
        torch.manual_seed(3)  # sampling differs between the paths; the SFT loss + L_temp do not sample
        cfg = replace(train_cfg, batch_prompts=flag, alpha=0.5)
        loss, m = raft_loss(policy, batch, cfg, rollout, sft=True)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        out[flag] = (loss.item(), m["loss/temp"], [g for g in grads if g is not None])
    assert out[True][0] == pytest.approx(out[False][0], rel=1e-4)
    assert out[True][1] == pytest.approx(out[False][1], rel=1e-4)
    assert all(torch.allclose(a, b, atol=1e-4, rtol=1e-3) for a, b in zip(out[True][2], out[False][2], strict=True))


def _tiny_full_omni(policy):
    """A full Qwen2.5-Omni model (thinker + talker + token2wav, model_type qwen2_5_omni) around the tiny
    thinker, with the smallest talker and vocoder the config classes accept: the layout of
    Qwen/Qwen2.5-Omni-7B, whose talker and vocoder RAFT must not load."""
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

    th = policy.model.config
    talker = dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=16, embedding_size=th.text_config.hidden_size,
                  rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]})
    dit = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, ff_mult=2, emb_dim=32, head_dim=16,
               repeats=2, num_embeds=128, mel_dim=16, enc_emb_dim=16, enc_dim=16, enc_channels=[16, 16, 16, 16, 32],
               enc_kernel_sizes=[5, 3, 3, 3, 1], enc_dilations=[1, 2, 3, 4, 1], enc_attention_channels=8,
               enc_res2net_scale=2, enc_se_channels=8)
    vocoder = dict(mel_dim=16, upsample_initial_channel=32, resblock_kernel_sizes=[3],
                   resblock_dilation_sizes=[[1, 3, 5]], upsample_rates=[2, 2], upsample_kernel_sizes=[4, 4])
    full = Qwen2_5OmniForConditionalGeneration(Qwen2_5OmniConfig(
        thinker_config=th.to_dict(), talker_config=talker,
        token2wav_config={"dit_config": dit, "bigvgan_config": vocoder}))
    full.thinker.load_state_dict(policy.model.state_dict())
    return full


def test_loads_the_thinker_of_a_full_omni_checkpoint(policy, tmp_path):
    """The production path for Qwen/Qwen2.5-Omni-7B: a full checkpoint folder (no spk_dict.pt needed)
    gives the thinker alone, with the same weights."""
    import json

    _tiny_full_omni(policy).save_pretrained(tmp_path)
    policy.processor.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "qwen2_5_omni"
    again = OmniPolicy.from_pretrained(tmp_path)
    assert type(again.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    assert sum(p.numel() for p in again.model.parameters()) == sum(p.numel() for p in policy.model.parameters())
    enc = policy.processor.encode("Who speaks next? A. Rachel B. Ross")
    conts = [policy.reference_ids("answer: A"), policy.reference_ids("answer: B")]
    with torch.no_grad():
        assert torch.allclose(policy.score(enc, conts).token_logprobs, again.score(enc, conts).token_logprobs)


def test_embedding_rows_past_the_tokenizer_are_never_sampled(policy):
    """Real checkpoints pad the vocabulary past the tokenizer (152,064 rows for 151,665 tokens); a random or
    barely trained model must not sample those rows, which decode to nothing."""
    import copy

    model = copy.deepcopy(policy.model)
    n_tok = len(policy.processor.tokenizer)
    model.resize_token_embeddings(n_tok + 64, mean_resizing=False)
    enc = policy.processor.encode("Who speaks next?")
    with torch.no_grad():  # make every padding row the model's first choice after the prompt
        h = model.model(**enc.inputs).last_hidden_state[0, -1]
        model.lm_head.weight[n_tok:] = 100 * h / h.norm() ** 2
    padded = OmniPolicy(model, policy.processor)
    assert set(range(n_tok, n_tok + 64)) <= set(padded.suppress_ids)
    cands = padded.generate(enc, 2, 6, greedy=True)
    assert all(t < n_tok for c in cands for t in c)
    unguarded = OmniPolicy(model, policy.processor)
    unguarded.suppress_ids = [i for i in unguarded.suppress_ids if i < n_tok]
    assert unguarded.generate(enc, 1, 1, greedy=True)[0][0] >= n_tok  # the setup does reach the padding rows
