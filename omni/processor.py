"""Qwen2.5-Omni inputs built by hand: tokenizer, Whisper mel features, image patches, placeholders.

``Qwen2_5OmniProcessor`` cannot be constructed here (it imports torchvision, which must not be
installed beside torch 2.13 CPU; PLATFORM.md). This module does its job with the three parts it
wraps — a fast tokenizer, ``WhisperFeatureExtractor`` and the PIL backend of the Qwen2-VL image
processor — and expands ``<|AUDIO|>`` / ``<|IMAGE|>`` to as many tokens as the encoders emit.

For the tiny model the tokenizer is a byte-level BPE trained locally with ``tokenizers`` on the
project's own prompt vocabulary, so nothing is downloaded. A real checkpoint folder brings its
own ``tokenizer.json`` and ``preprocessor_config.json``; the same class loads both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# Special tokens, spelled as in Qwen2.5-Omni so a real checkpoint's ids resolve by name.
IM_START, IM_END, EOS = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
AUDIO, AUDIO_BOS, AUDIO_EOS = "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"
IMAGE, VISION_BOS, VISION_EOS, VIDEO = "<|IMAGE|>", "<|vision_bos|>", "<|vision_eos|>", "<|VIDEO|>"
SPECIALS = [EOS, IM_START, IM_END, AUDIO, AUDIO_BOS, AUDIO_EOS, IMAGE, VISION_BOS, VISION_EOS, VIDEO]

# Each chat message is bounded to this many characters (its middle elided) unless a caller says
# otherwise: tool results and cue dumps can exceed the thinker's context (4,096 positions for the
# tiny model). RAFT's prompts and the evaluator's adapter both encode through the default.
MAX_TURN_CHARS = 4000
AUDIO_TOKENS_PER_S = 25.0  # Qwen2.5-Omni audio encoder: 40 ms per output token (two stride-2 stages over 10 ms mels)

# Text the tiny tokenizer learns its merges from: the words our prompts and answers use.
_SEED_TEXT = """
system user assistant You are an assistant that reasons about who speaks when, to whom and about what.
Answer with plan: act: reflect: answer: sections. plan act reflect answer
Which visible person spoke during the utterance? Who speaks next? Which later segment is spoken by the same
person as segment? When does speaker speak? Summarize the dialogue with speaker attribution. Link the two scenes.
Options: A B C D E F G H. The answer is A. The answer is B. answer: A answer: B answer: C answer: D
track person speaker face turn transcript said says speaks spoke scene first second earlier later same
cues turns transcript face_tracks active_speaker sync offset confidence score seconds s
diarize transcribe detect_faces track_faces sync_check active_speaker tools use call check verify ok
[[0.0, 1.5], [2.0, 3.5]] {"plan": "", "act": [], "reflect": "", "answer": ""} 0 1 2 3 4 5 6 7 8 9 . , : ; - ( )
the a an and of to in on at is are was were it this that with for from by as be not yes no who what when where
hello good morning meeting project budget design team plan week today tomorrow agree think know right well okay
"""


def train_tiny_tokenizer(vocab_size: int, extra_text: list[str] | None = None):
    """A byte-level BPE fast tokenizer with Qwen's special tokens, trained in-process (no downloads)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = _SEED_TEXT.strip().splitlines() * 4 + list(extra_text or [])
    tok.train_from_iterator(lines, trainer=trainer)
    # PreTrainedTokenizerFast, not AutoTokenizer: the latter picks Qwen2's class and appends an id
    # past the vocabulary (PLATFORM.md).
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, padding_side="left")


ELIDED = "\n[...]\n"


def _bounded(text: str, max_chars: int | None) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    head = max_chars // 2
    return text[:head] + ELIDED + text[len(text) - (max_chars - head):]


@dataclass
class Encoded:
    """Model inputs for one prompt (batch of 1), plus the time map of its placeholder tokens."""

    inputs: dict[str, torch.Tensor]
    audio_times: np.ndarray  # (n_audio_tokens,) start time in seconds of each audio token, from clip start
    image_times: list[float]  # time of each image (frame), seconds from clip start
    text_spans: list[tuple[int, int, float, float]]  # (tok_from, tok_to, t0, t1): transcript lines in the prompt
    # the raw media the features came from, in vLLM's multi_modal_data form ({"audio": [(wave, sr)], "image":
    # [frames]}), for a rollout engine that runs its own processor; None when built without media
    media: dict | None = None

    @property
    def length(self) -> int:
        return int(self.inputs["input_ids"].shape[1])


class OmniProcessor:
    """Tokenizer + Whisper features + Qwen2-VL patches, with hand-expanded placeholders."""

    def __init__(self, tokenizer, feature_extractor, image_processor, max_audio_s: float = 30.0):
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.image_processor = image_processor
        self.max_audio_s = max_audio_s
        self.ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def tiny(cls, vocab_size: int, num_mel_bins: int, patch_size: int, merge_size: int, frame_size: int,
             max_audio_s: float, extra_text: list[str] | None = None) -> OmniProcessor:
        from transformers import WhisperFeatureExtractor
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        px = frame_size * frame_size
        return cls(
            train_tiny_tokenizer(vocab_size, extra_text),
            WhisperFeatureExtractor(feature_size=num_mel_bins),
            Qwen2VLImageProcessorPil(patch_size=patch_size, merge_size=merge_size, temporal_patch_size=2,
                                     min_pixels=px // 2, max_pixels=px),
            max_audio_s=max_audio_s,
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, max_audio_s: float = 30.0) -> OmniProcessor:
        from transformers import PreTrainedTokenizerFast, WhisperFeatureExtractor
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        path = Path(path)
        tok = PreTrainedTokenizerFast.from_pretrained(str(path))
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = EOS
        pre = json.loads((path / "preprocessor_config.json").read_text())
        fe = WhisperFeatureExtractor(feature_size=pre.get("feature_size", 128))
        ip_keys = ("patch_size", "merge_size", "temporal_patch_size", "min_pixels", "max_pixels")
        ip = Qwen2VLImageProcessorPil(**{k: pre[k] for k in ip_keys if k in pre})
        return cls(tok, fe, ip, max_audio_s=max_audio_s)

    def save_pretrained(self, path: str | Path) -> None:
        """Tokenizer files plus one preprocessor_config.json holding both extractors' keys (Qwen's layout)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(path))
        ip = self.image_processor
        merged = {
            "feature_size": self.feature_extractor.feature_size, "sampling_rate": self.feature_extractor.sampling_rate,
            "patch_size": ip.patch_size, "merge_size": ip.merge_size, "temporal_patch_size": ip.temporal_patch_size,
            "min_pixels": ip.size["shortest_edge"], "max_pixels": ip.size["longest_edge"],
        }
        (path / "preprocessor_config.json").write_text(json.dumps(merged, indent=1))

    # -- encoding ------------------------------------------------------------------------------
    def audio_features(self, audio: np.ndarray, sr: int = 16000):
        audio = np.asarray(audio, dtype=np.float32)[: int(self.max_audio_s * sr)]
        if audio.size < sr // 10:  # the encoder needs a few frames; pad silence to 100 ms
            audio = np.pad(audio, (0, sr // 10 - audio.size))
        feats = self.feature_extractor(
            [audio], sampling_rate=sr, return_attention_mask=True, padding="longest", return_tensors="pt"
        )
        n_mel = int(feats["attention_mask"].sum())
        # the thinker's audio length formula (get_rope_index / _get_feat_extract_output_lengths)
        n_tok = ((n_mel - 1) // 2 + 1 - 2) // 2 + 1
        return feats["input_features"], feats["attention_mask"], n_tok

    def encode(self, prompt: str, system: str = "", audio: np.ndarray | None = None,
               frames: list[tuple[float, np.ndarray]] = (), transcript_lines: list[tuple[str, float, float]] = ()
               ) -> Encoded:
        """One system + user prompt: :meth:`encode_chat` of those two turns."""
        return self.encode_chat([{"role": "system", "content": system}, {"role": "user", "content": prompt}],
                                audio, frames, transcript_lines)

    def encode_chat(self, messages: list[dict[str, str]], audio: np.ndarray | None = None,
                    frames: list[tuple[float, np.ndarray]] = (),
                    transcript_lines: list[tuple[str, float, float]] | None = None,
                    max_turn_chars: int | None = MAX_TURN_CHARS) -> Encoded:
        """Chat messages (``{"role", "content"}``) in Qwen's template, ready for the assistant's turn.

        Each message is one ``<|im_start|>role\n...<|im_end|>`` turn, in order; an empty system turn
        is left out. The clip's audio and frames open the first user turn (as Qwen2.5-Omni places
        media). ``transcript_lines`` are (line text, t0, t1) that appear verbatim in a message after
        the system turn; their token spans are returned so f_t(t) can be read off the LM states.
        ``max_turn_chars`` bounds each message (None: no bound; default :data:`MAX_TURN_CHARS`, which
        training and the evaluator's adapter both use): a longer one keeps its first and last halves
        around an elision mark, so a question rendered after long cues survives."""
        if not any(m["role"] == "user" for m in messages):
            raise ValueError(f"encode_chat: messages need a 'user' turn; got roles {[m['role'] for m in messages]}")
        inputs: dict[str, torch.Tensor] = {}
        media = ""
        audio_times = np.zeros(0)
        if audio is not None:
            feats, mask, n_tok = self.audio_features(audio)
            inputs["input_features"], inputs["feature_attention_mask"] = feats, mask
            media += AUDIO_BOS + AUDIO * n_tok + AUDIO_EOS
            audio_times = np.arange(n_tok) / AUDIO_TOKENS_PER_S
        image_times = []
        if frames:
            out = self.image_processor(images=[f for _, f in frames], return_tensors="pt")
            inputs["pixel_values"], inputs["image_grid_thw"] = out["pixel_values"], out["image_grid_thw"]
            merge = self.image_processor.merge_size ** 2
            for (t, _), thw in zip(frames, out["image_grid_thw"], strict=True):
                media += VISION_BOS + IMAGE * int(thw.prod() // merge) + VISION_EOS
                image_times.append(float(t))
        text, body = "", -1  # body: where the first non-system content starts (transcript lines are searched from there)
        for m in messages:
            content = _bounded(m["content"], max_turn_chars)
            if m["role"] == "system" and not content:
                continue
            text += f"{IM_START}{m['role']}\n"
            if m["role"] == "user" and media:
                text, media = text + media, ""
            if body < 0 and m["role"] != "system":
                body = len(text)
            text += f"{content}{IM_END}\n"
        text += f"{IM_START}assistant\n"
        enc = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        inputs["input_ids"] = torch.tensor([enc["input_ids"]])
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        spans = []
        offsets = enc["offset_mapping"]
        for line, t0, t1 in transcript_lines or ():
            c0 = text.find(line, body)
            if c0 < 0:
                continue
            c1 = c0 + len(line)
            toks = [i for i, (a, b) in enumerate(offsets) if a < c1 and b > c0]
            if toks:
                spans.append((toks[0], toks[-1] + 1, float(t0), float(t1)))
        media = {}
        if audio is not None:
            media["audio"] = [(np.asarray(audio, dtype=np.float32)[: int(self.max_audio_s * 16000)], 16000)]
        if frames:
            media["image"] = [f for _, f in frames]
        return Encoded(inputs, audio_times, image_times, spans, media or None)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]
