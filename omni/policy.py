"""Load a Qwen2.5-Omni thinker checkpoint and answer chat messages with it, through transformers.

``load_thinker`` reads any folder training or Qwen publishes: the tiny random thinker, the
HF-format export ``amuse train`` writes, or a full Qwen2.5-Omni checkpoint (read as its thinker).
``OmniThinker`` holds the model and :class:`~omni.processor.OmniProcessor` with the token rules
every caller shares (stop ids, ids never to sample); RAFT's training policy builds on it.
``HFOmniPolicy`` adds what the evaluator and the server call, behind the :class:`Policy` protocol:
one reply, or a batch of requests through one padded forward with each reply streamed as it is
generated (``omni.batched``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from omni.batched import OnDelta, Row, generate_rows
from omni.completion import Completion
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

    # -- batching ---------------------------------------------------------------------------------
    def _collate(self, encs: list[Encoded], rows: list[int], conts: list[list[int]] | None = None
                 ) -> tuple[dict[str, torch.Tensor], list[int], int]:
        """One batch of ``sum(rows)`` rows: prompt ``i`` repeated ``rows[i]`` times, left-padded to the
        longest prompt P, then (``conts``: one per row) a right-padded continuation from column P.

        Per-prompt media go along row by row: ``input_features`` are padded along time to the longest
        clip, with ``feature_attention_mask`` zero on the padding (the thinker drops masked frames
        before its audio encoder); image patches are concatenated in row order with one
        ``image_grid_thw`` entry per image, as the thinker expects for a batch. Positions (mRoPE)
        come from the attention mask, so padded columns do not shift them.
        Returns (inputs, left pad of each prompt, P)."""
        pad_id = self.processor.ids[EOS]
        p_max = max(e.length for e in encs)
        lmax = max(1, max(len(c) for c in conts)) if conts is not None else 0
        n = sum(rows)
        ids = torch.full((n, p_max + lmax), pad_id, dtype=torch.long)
        att = torch.zeros((n, p_max + lmax), dtype=torch.long)
        pads = []
        r = 0
        for e, k in zip(encs, rows, strict=True):
            pad = p_max - e.length
            pads.append(pad)
            for _ in range(k):
                ids[r, pad:p_max] = e.inputs["input_ids"][0]
                att[r, pad:p_max] = 1
                if conts is not None and conts[r]:
                    ids[r, p_max : p_max + len(conts[r])] = torch.tensor(conts[r])
                    att[r, p_max : p_max + len(conts[r])] = 1
                r += 1
        out = {"input_ids": ids, "attention_mask": att, **self._media(encs, rows)}
        return self.to_model(out), pads, p_max

    @staticmethod
    def _media(encs: list[Encoded], rows: list[int]) -> dict[str, torch.Tensor]:
        """Mel features (padded along time, masked) and image patches of prompt ``i``, ``rows[i]`` times."""
        feats, fmasks, pix, thw = [], [], [], []
        for e, k in zip(encs, rows, strict=True):
            for _ in range(k):
                if "input_features" in e.inputs:
                    feats.append(e.inputs["input_features"][0])
                    fmasks.append(e.inputs["feature_attention_mask"][0])
                if "pixel_values" in e.inputs:
                    pix.append(e.inputs["pixel_values"])
                    thw.append(e.inputs["image_grid_thw"])
        out = {}
        if feats:
            t_max = max(f.shape[-1] for f in feats)
            out["input_features"] = torch.stack(
                [torch.nn.functional.pad(f, (0, t_max - f.shape[-1])) for f in feats])
            out["feature_attention_mask"] = torch.stack(
                [torch.nn.functional.pad(m, (0, t_max - m.shape[-1])) for m in fmasks])
        if pix:
            out["pixel_values"] = torch.cat(pix)
            out["image_grid_thw"] = torch.cat(thw)
        return out

    @staticmethod
    def _media_key(enc: Encoded) -> tuple[bool, bool]:
        # the thinker picks its position scheme per batch (3-D mRoPE only when images are present), so
        # prompts are batched only with prompts that carry the same kinds of media
        return "input_features" in enc.inputs, "pixel_values" in enc.inputs

    def _groups(self, encs: list[Encoded], batched: bool) -> list[list[int]]:
        if not batched:
            return [[i] for i in range(len(encs))]
        groups: dict[tuple, list[int]] = {}
        for i, e in enumerate(encs):
            groups.setdefault(self._media_key(e), []).append(i)
        return list(groups.values())



class HFOmniPolicy(OmniThinker):
    """:class:`Policy` over a local checkpoint folder: ``HFOmniPolicy.from_pretrained(path)``.

    Safe to call from several threads: each request samples from its own generator
    (``omni.batched.RowSampler``), and forward passes take turns (``forward_lock``), because the
    thinker keeps per-call position state on the model (``rope_deltas``, set at prefill and read
    at every decode step). Requests that arrive together share one padded forward through
    :meth:`complete_batch` instead of queueing."""

    def __init__(self, model, processor: OmniProcessor):
        super().__init__(model, processor)
        self.forward_lock = threading.Lock()
        self.forwards = 0  # generate calls so far: what a batch costs, for tests and benches

    def row(self, messages: list[dict[str, str]], audio: np.ndarray | None = None,
            frames: list[tuple[float, np.ndarray]] = (), max_new_tokens: int = 64, temperature: float = 0.0,
            seed: int = 0, max_turn_chars: int | None = None, top_p: float = 1.0, stop: list[str] | None = None) -> Row:
        """One request, encoded (:meth:`OmniProcessor.encode_chat` with the clip's media)."""
        enc: Encoded = self.processor.encode_chat(messages, audio, frames, max_turn_chars=max_turn_chars)
        return Row(enc, max_new_tokens, temperature, top_p, seed, list(stop or []))

    def complete_batch(self, rows: list[Row], on_delta: OnDelta | None = None) -> list[Completion]:
        """Each row's reply: rows carrying the same kinds of media share one padded ``generate``
        (``omni.batched.generate_rows``); ``on_delta(row, text)`` gets each row's text as its
        tokens are produced. Decoding is greedy at temperature 0, else sampled under the row's seed;
        a row ends at a stop token, at one of its ``stop`` strings (cut off, as OpenAI does) or after
        its ``max_new_tokens``."""
        out: list[Completion | None] = [None] * len(rows)
        for group in self._groups([r.enc for r in rows], batched=True):
            def emit(j: int, piece: str, group=group) -> None:
                on_delta(group[j], piece)

            with self.forward_lock:
                self.forwards += 1
                done = generate_rows(self, [rows[i] for i in group], emit if on_delta is not None else None)
            for i, c in zip(group, done, strict=True):
                out[i] = c
        return out  # type: ignore[return-value]

    def complete(self, messages: list[dict[str, str]], audio: np.ndarray | None = None,
                 frames: list[tuple[float, np.ndarray]] = (), max_new_tokens: int = 64,
                 temperature: float = 0.0, seed: int = 0, max_turn_chars: int | None = None,
                 top_p: float = 1.0, stop: list[str] | None = None) -> Completion:
        """One request's reply (:meth:`complete_batch` of one row)."""
        return self.complete_batch([self.row(messages, audio, frames, max_new_tokens, temperature, seed,
                                             max_turn_chars, top_p, stop)])[0]

    def generate(self, messages: list[dict[str, str]], audio: np.ndarray | None = None,
                 frames: list[tuple[float, np.ndarray]] = (), max_new_tokens: int = 64,
                 temperature: float = 0.0, seed: int = 0, max_turn_chars: int | None = None) -> str:
        """The reply text of :meth:`complete`."""
        return self.complete(messages, audio, frames, max_new_tokens, temperature, seed, max_turn_chars).text
