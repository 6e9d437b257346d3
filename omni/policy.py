"""Load a Qwen2.5-Omni thinker checkpoint and answer chat messages with it, through transformers.

``load_thinker`` reads any folder training or Qwen publishes: the tiny random thinker, the
HF-format export ``amuse train`` writes, or a full Qwen2.5-Omni checkpoint (read as its thinker).
``OmniThinker`` holds the model and :class:`~omni.processor.OmniProcessor` with the token rules
every caller shares (stop ids, ids never to sample); RAFT's training policy builds on it.
``HFOmniPolicy`` adds the one call the evaluator needs, behind the :class:`Policy` protocol.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

from omni.completion import Completion, cut_at_stop
from omni.processor import EOS, IM_END, Encoded, OmniProcessor

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@runtime_checkable
class Policy(Protocol):
    """A model that answers chat messages about one clip's audio and frames."""

    def generate(self, messages: list[dict[str, str]], audio: np.ndarray | None = None,
                 frames: list[tuple[float, np.ndarray]] = (), max_new_tokens: int = 64,
                 temperature: float = 0.0, seed: int = 0) -> str:
        """The assistant's reply; greedy when ``temperature`` is 0, else sampled under ``seed``."""
        ...


def load_thinker(path: str | Path, dtype: str = "float32"):
    """A ``Qwen2_5OmniThinkerForConditionalGeneration`` from a local folder; never downloads."""
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    path = Path(path)
    config_file = path / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{config_file}: not a checkpoint folder (no config.json)")
    if dtype not in DTYPES:
        raise ValueError(f"dtype: {dtype!r} is not one of {sorted(DTYPES)}")
    meta = json.loads(config_file.read_text())
    kwargs: dict[str, Any] = {"dtype": DTYPES[dtype], "local_files_only": True}
    if meta.get("model_type") == "qwen2_5_omni":
        # A full Omni checkpoint (thinker + talker + token2wav, e.g. Qwen/Qwen2.5-Omni-7B). Only the
        # thinker's weights are read: its config is the checkpoint's thinker_config and its tensors
        # are the "thinker."-prefixed ones. Loading the whole model would also read the talker and
        # the vocoder (about 2B parameters no caller uses) and require the speaker file spk_dict.pt.
        from transformers import Qwen2_5OmniThinkerConfig

        kwargs["config"] = Qwen2_5OmniThinkerConfig(**meta["thinker_config"])
        kwargs["key_mapping"] = {r"^thinker\.": ""}
    return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(str(path), **kwargs)


class OmniThinker:
    """A Qwen2.5-Omni thinker and its processor, with the token rules generation obeys."""

    def __init__(self, model, processor: OmniProcessor):
        self.model = model
        self.processor = processor
        self.stop_ids = [processor.ids[IM_END], processor.ids[EOS]]
        # media placeholders must never be sampled: the thinker would look for features that do not exist
        self.suppress_ids = [i for t, i in processor.ids.items() if t not in (IM_END, EOS)]
        # embedding rows past the tokenizer (Qwen pads 151,665 tokens to 152,064 rows) decode to nothing
        vocab = model.config.get_text_config().vocab_size
        self.suppress_ids += list(range(len(processor.tokenizer), vocab))

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: str = "float32", max_audio_s: float = 30.0):
        """Thinker weights (:func:`load_thinker`) and the processor files of the same folder."""
        return cls(load_thinker(path, dtype), OmniProcessor.from_pretrained(path, max_audio_s=max_audio_s))

    def save_pretrained(self, path: str | Path) -> None:
        self.model.save_pretrained(str(path))
        self.processor.save_pretrained(path)

    def to_model(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Inputs on the model's device, float features (mels, patches) in its dtype."""
        dev = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        return {k: (v.to(dtype) if v.is_floating_point() else v).to(dev) for k, v in inputs.items()}

    @torch.no_grad()
    def sample_ids(self, inputs: dict[str, torch.Tensor], prompt_len: int, max_new_tokens: int,
                   temperature: float = 1.0, top_p: float = 1.0, greedy: bool = False) -> list[list[int]]:
        """One continuation per input row, each cut after its first stop token (kept). ``greedy``
        decodes deterministically; otherwise samples with temperature / top_p (no top-k cut)."""
        was_training = self.model.training
        self.model.eval()
        sampling = {} if greedy else {"temperature": temperature, "top_p": top_p, "top_k": 0}
        try:
            out = self.model.generate(
                **inputs, do_sample=not greedy, max_new_tokens=max_new_tokens, eos_token_id=self.stop_ids,
                suppress_tokens=self.suppress_ids, pad_token_id=self.processor.ids[EOS], **sampling,
            )
        finally:
            self.model.train(was_training)
        rows = out[:, prompt_len:].tolist()
        return [row[: next((t + 1 for t, tok in enumerate(row) if tok in self.stop_ids), len(row))] for row in rows]

    def decode(self, ids: list[int]) -> str:
        return self.processor.decode(ids)


class SeededSampler(LogitsProcessor):
    """Temperature / top-p sampling from a private ``torch.Generator``, for one request.

    ``generate`` samples from torch's global generator, so two threads seeding it race. This
    processor draws the next token itself and leaves every other token at -inf, so ``generate``
    runs greedily (argmax picks the drawn token) and concurrent requests never share RNG state."""

    def __init__(self, temperature: float, top_p: float, seed: int):
        self.temperature = TemperatureLogitsWarper(temperature)
        self.top_p = TopPLogitsWarper(top_p) if top_p < 1.0 else None
        self.generator = torch.Generator().manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = self.temperature(input_ids, scores)
        if self.top_p is not None:
            scores = self.top_p(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1).cpu()
        drawn = torch.multinomial(probs, 1, generator=self.generator).to(scores.device)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(1, drawn, 0.0)


class HFOmniPolicy(OmniThinker):
    """:class:`Policy` over a local checkpoint folder: ``HFOmniPolicy.from_pretrained(path)``.
    Safe to call from several threads at once: sampling draws from a generator per request."""

    def complete(self, messages: list[dict[str, str]], audio: np.ndarray | None = None,
                 frames: list[tuple[float, np.ndarray]] = (), max_new_tokens: int = 64,
                 temperature: float = 0.0, seed: int = 0, max_turn_chars: int | None = None,
                 top_p: float = 1.0, stop: list[str] | None = None) -> Completion:
        """Encode ``messages`` with the clip's media (:meth:`OmniProcessor.encode_chat`) and decode
        the reply: greedy at ``temperature`` 0, else sampled (temperature, ``top_p``) under ``seed``.
        Generation ends at a stop token, at any of the ``stop`` strings (cut off, as OpenAI does) or
        after ``max_new_tokens``."""
        enc: Encoded = self.processor.encode_chat(messages, audio, frames, max_turn_chars=max_turn_chars)
        inputs = self.to_model(enc.inputs)
        extra: dict[str, Any] = {}
        if temperature > 0:
            extra["logits_processor"] = LogitsProcessorList([SeededSampler(temperature, top_p, seed)])
        if stop:
            extra.update(stop_strings=list(stop), tokenizer=self.processor.tokenizer)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model.generate(
                    **inputs, do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=self.stop_ids,
                    suppress_tokens=self.suppress_ids, pad_token_id=self.processor.ids[EOS], **extra,
                )
        finally:
            self.model.train(was_training)
        row = out[0, enc.length:].tolist()
        end = next((t + 1 for t, tok in enumerate(row) if tok in self.stop_ids), None)
        ids = row[:end] if end is not None else row
        text, stopped = cut_at_stop(self.decode(ids), list(stop or []))
        finish = "stop" if end is not None or stopped else "length"
        return Completion(text, enc.length, len(ids), finish)

    def generate(self, messages: list[dict[str, str]], audio: np.ndarray | None = None,
                 frames: list[tuple[float, np.ndarray]] = (), max_new_tokens: int = 64,
                 temperature: float = 0.0, seed: int = 0, max_turn_chars: int | None = None) -> str:
        """The reply text of :meth:`complete`."""
        return self.complete(messages, audio, frames, max_new_tokens, temperature, seed, max_turn_chars).text
