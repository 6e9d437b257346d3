"""``OmniProcessor.encode_chat``: the one encoding training and evaluation share."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omni.processor import (
    AUDIO,
    AUDIO_BOS,
    AUDIO_EOS,
    IM_END,
    IM_START,
    IMAGE,
    VISION_BOS,
    VISION_EOS,
    OmniProcessor,
)

torch.set_num_threads(1)

SYSTEM = "You are an assistant that reasons about who speaks when."
USER = "Which visible person spoke?\nA. the person on the left\nB. the person on the right\ntranscript:\nSPK_0: hello good morning"
LINES = [("SPK_0: hello good morning", 0.5, 1.5)]


@pytest.fixture(scope="module")
def proc():
    return OmniProcessor.tiny(vocab_size=1024, num_mel_bins=128, patch_size=14, merge_size=2, frame_size=56,
                              max_audio_s=2.0)


@pytest.fixture(scope="module")
def media():
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    frames = [(t, rng.integers(0, 256, (56, 56, 3), dtype=np.uint8)) for t in (0.0, 0.5)]
    return audio, frames


def test_system_user_is_qwens_template_and_equals_encode(proc, media):
    audio, frames = media
    chat = proc.encode_chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
                            audio, frames, transcript_lines=LINES)
    # the layout written out by hand: media open the user turn, the assistant's turn is left open
    n_audio = len(chat.audio_times)
    n_image = int(chat.inputs["image_grid_thw"][0].prod()) // 4
    media_text = AUDIO_BOS + AUDIO * n_audio + AUDIO_EOS + (VISION_BOS + IMAGE * n_image + VISION_EOS) * 2
    text = f"{IM_START}system\n{SYSTEM}{IM_END}\n{IM_START}user\n{media_text}{USER}{IM_END}\n{IM_START}assistant\n"
    assert chat.inputs["input_ids"][0].tolist() == proc.encode_text(text)
    assert n_audio == 25 and chat.image_times == [0.0, 0.5]
    old = proc.encode(USER, system=SYSTEM, audio=audio, frames=frames, transcript_lines=LINES)
    assert old.inputs.keys() == chat.inputs.keys()
    assert all(torch.equal(old.inputs[k], chat.inputs[k]) for k in old.inputs)
    assert old.text_spans == chat.text_spans
    (a, b, t0, t1), = chat.text_spans
    assert proc.decode(chat.inputs["input_ids"][0, a:b].tolist()).strip() == LINES[0][0] and (t0, t1) == (0.5, 1.5)


def test_later_turns_keep_their_roles(proc, media):
    audio, _ = media
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER},
                {"role": "assistant", "content": "plan: call diarize"},
                {"role": "user", "content": "Tool results:\n[]\nanswer now."}]
    enc = proc.encode_chat(messages, audio, transcript_lines=LINES)
    text = proc.tokenizer.decode(enc.inputs["input_ids"][0])
    assert text.endswith(f"{IM_START}assistant\nplan: call diarize{IM_END}\n"
                         f"{IM_START}user\nTool results:\n[]\nanswer now.{IM_END}\n{IM_START}assistant\n")
    assert "[assistant]" not in text and "[user]" not in text
    assert text.count(AUDIO_BOS) == 1 and text.index(AUDIO_BOS) < text.index(USER)  # media once, in the first user turn
    # the transcript line is found in the first user turn, as with two turns
    assert enc.text_spans == proc.encode_chat(messages[:2], audio, transcript_lines=LINES).text_spans


def test_empty_system_is_left_out_and_a_user_turn_is_required(proc):
    enc = proc.encode_chat([{"role": "system", "content": ""}, {"role": "user", "content": "hi"}])
    assert proc.tokenizer.decode(enc.inputs["input_ids"][0]) == f"{IM_START}user\nhi{IM_END}\n{IM_START}assistant\n"
    with pytest.raises(ValueError, match="'user' turn"):
        proc.encode_chat([{"role": "system", "content": SYSTEM}])


def test_a_long_turn_keeps_its_head_and_tail(proc):
    cues, question = "cues: " + "[0.0, 1.5] " * 500, "Which visible person spoke?"
    enc = proc.encode_chat([{"role": "user", "content": cues + question}], max_turn_chars=200)
    text = proc.tokenizer.decode(enc.inputs["input_ids"][0])
    body = text.split("user\n", 1)[1].split(IM_END)[0]
    assert len(body) == 200 + len("\n[...]\n") and body.startswith("cues: ") and body.endswith(question)
