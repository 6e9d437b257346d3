"""The training policy: RAFT's calls over ``omni.policy.OmniThinker`` (a Qwen2.5-Omni thinker).

It encodes a clip's audio and sampled frames with the prompt (``omni.processor``), samples K
candidates, returns per-token log-probabilities of given continuations, and reads the
time-aligned embeddings f_a, f_v, f_t, f_r off the LM's last hidden layer for L_temp.

The tiny random model (tests, demo, benches) is built offline once and cached under
``train.model_cache_dir``; after that every process loads it with the same
``from_pretrained`` code (``omni.policy.load_thinker``) that loads a real checkpoint or an
exported aligned model, in training and in the evaluator alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from omni.policy import OmniThinker
from omni.processor import AUDIO, EOS, IM_END, IMAGE, Encoded, OmniProcessor
from raft.config import TinyModelConfig, TrainConfig

PATCH, MERGE, MELS = 14, 2, 128


def tiny_thinker_config(t: TinyModelConfig, proc: OmniProcessor):
    from transformers import Qwen2_5OmniThinkerConfig

    ids = proc.ids
    vocab = -(-len(proc.tokenizer) // 64) * 64  # >= tokenizer size, so no sampled id falls outside it
    head_dim = t.hidden_size // t.num_heads
    # mrope splits head_dim/2 rotary pairs over (time, height, width), as Qwen's 16/24/24 does for 128.
    half = head_dim // 2
    mrope = [half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8]
    return Qwen2_5OmniThinkerConfig(
        audio_config=dict(num_mel_bins=MELS, encoder_layers=t.audio_layers, encoder_attention_heads=2,
                          encoder_ffn_dim=2 * t.audio_d_model, d_model=t.audio_d_model, output_dim=t.hidden_size,
                          n_window=50, max_source_positions=1500),
        vision_config=dict(depth=t.vision_depth, hidden_size=t.vision_hidden, intermediate_size=2 * t.vision_hidden,
                           num_heads=2, patch_size=PATCH, spatial_merge_size=MERGE, temporal_patch_size=2,
                           out_hidden_size=t.hidden_size, window_size=112, fullatt_block_indexes=[t.vision_depth - 1]),
        text_config=dict(vocab_size=vocab, hidden_size=t.hidden_size, intermediate_size=t.intermediate_size,
                         num_hidden_layers=t.num_layers, num_attention_heads=t.num_heads,
                         num_key_value_heads=t.num_kv_heads, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope},
                         eos_token_id=ids[IM_END], pad_token_id=ids[EOS]),
        audio_token_index=ids[AUDIO], image_token_index=ids[IMAGE], video_token_index=ids["<|VIDEO|>"],
        audio_start_token_id=ids["<|audio_bos|>"], audio_end_token_id=ids["<|audio_eos|>"],
        vision_start_token_id=ids["<|vision_bos|>"], vision_end_token_id=ids["<|vision_eos|>"],
        user_token_id=ids["<|im_start|>"],
    )


def build_tiny(cfg: TrainConfig, extra_text: list[str] | None = None) -> Path:
    """Build (once) the tiny random thinker + processor; return the cached folder. Safe under races:
    each builder writes a temp folder and renames it into place; losers discard theirs.
    ``extra_text``: more lines for the tokenizer's BPE training (a testbed's prompts, so they tokenize
    short); part of the cache key."""
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    spec = {**asdict(cfg.tiny), "frame": cfg.frame_size, "v": 1}
    if extra_text:
        spec["extra_text"] = hashlib.sha1("\n".join(extra_text).encode()).hexdigest()
    key = hashlib.sha1(json.dumps(spec, sort_keys=True).encode())
    target = Path(cfg.model_cache_dir).resolve() / f"tiny-{key.hexdigest()[:12]}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    proc = OmniProcessor.tiny(cfg.tiny.vocab_size, MELS, PATCH, MERGE, cfg.frame_size, cfg.max_audio_s, extra_text)
    torch.manual_seed(cfg.tiny.seed)
    model = Qwen2_5OmniThinkerForConditionalGeneration(tiny_thinker_config(cfg.tiny, proc))
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".build-"))
    model.save_pretrained(str(tmp))
    proc.save_pretrained(tmp)
    try:
        os.rename(tmp, target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@dataclass
class Scored:
    """Output of :meth:`OmniPolicy.score` for N continuations of one prompt."""

    token_logprobs: torch.Tensor  # (N, L) log pi(y_t | x, y_<t); 0 where mask is 0
    mask: torch.Tensor  # (N, L) 1 for real continuation tokens
    hidden: torch.Tensor  # (N, S, D) last-layer LM states of prompt + continuation
    prompt_len: int


class OmniPolicy(OmniThinker):
    """A Qwen2.5-Omni thinker and its processor, with the calls RAFT needs. Loading, saving, stop
    and suppressed ids come from :class:`omni.policy.OmniThinker`, shared with the evaluator."""

    @classmethod
    def build(cls, cfg: TrainConfig) -> OmniPolicy:
        path = cfg.model_path or build_tiny(cfg)
        return cls.from_pretrained(path, cfg.dtype, cfg.max_audio_s)

    # -- sampling --------------------------------------------------------------------------------
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
        pads, feats, fmasks, pix, thw = [], [], [], [], []
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
                if "input_features" in e.inputs:
                    feats.append(e.inputs["input_features"][0])
                    fmasks.append(e.inputs["feature_attention_mask"][0])
                if "pixel_values" in e.inputs:
                    pix.append(e.inputs["pixel_values"])
                    thw.append(e.inputs["image_grid_thw"])
                r += 1
        out = {"input_ids": ids, "attention_mask": att}
        if feats:
            t_max = max(f.shape[-1] for f in feats)
            out["input_features"] = torch.stack(
                [torch.nn.functional.pad(f, (0, t_max - f.shape[-1])) for f in feats])
            out["feature_attention_mask"] = torch.stack(
                [torch.nn.functional.pad(m, (0, t_max - m.shape[-1])) for m in fmasks])
        if pix:
            out["pixel_values"] = torch.cat(pix)
            out["image_grid_thw"] = torch.cat(thw)
        return self.to_model(out), pads, p_max

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

    @torch.no_grad()
    def generate(self, enc: Encoded, k: int, max_new_tokens: int, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False) -> list[list[int]]:
        """K sampled continuations of one prompt, each cut after its first stop token (kept)."""
        return self.generate_batch([enc], k, max_new_tokens, temperature, top_p, greedy=greedy)[0]

    @torch.no_grad()
    def generate_batch(self, encs: list[Encoded], k: int, max_new_tokens: int, temperature: float = 1.0,
                       top_p: float = 1.0, greedy: bool = False, batched: bool = True) -> list[list[list[int]]]:
        """K continuations of each prompt; with ``batched`` all B x K sequences of prompts that carry the
        same kinds of media are decoded in one left-padded ``generate`` call (else one call per prompt).
        ``greedy`` decodes deterministically (tests); otherwise samples with temperature / top_p."""
        out_all: list[list[list[int]]] = [[] for _ in encs]
        for group in self._groups(encs, batched):
            inputs, _, p_max = self._collate([encs[i] for i in group], [k] * len(group))
            rows = self.sample_ids(inputs, p_max, max_new_tokens, temperature, top_p, greedy)
            for j, i in enumerate(group):
                out_all[i].extend(rows[j * k : (j + 1) * k])
        return out_all

    def reference_ids(self, text: str) -> list[int]:
        """Token ids of a reference answer, terminated like a chat turn so the model learns to stop."""
        return self.processor.encode_text(text) + [self.processor.ids[IM_END]]

    # -- scoring ---------------------------------------------------------------------------------
    def score(self, enc: Encoded, continuations: list[list[int]]) -> Scored:
        """log pi of each continuation given the prompt, with gradients, in one batched forward."""
        return self.score_batch([enc], [continuations])[0]

    def score_batch(self, encs: list[Encoded], continuations: list[list[list[int]]], batched: bool = True
                    ) -> list[Scored]:
        """:meth:`score` for several prompts. With ``batched``, all rows of prompts that carry the same
        kinds of media go through one left-padded forward; each returned ``Scored`` has its prompt's
        rows, with the left padding cut off ``hidden`` so the prompt starts at position 0 again."""
        out: list[Scored | None] = [None] * len(encs)
        for group in self._groups(encs, batched):
            rows = [len(continuations[i]) for i in group]
            conts = [c for i in group for c in continuations[i]]
            inputs, pads, p_max = self._collate([encs[i] for i in group], rows, conts)
            lmax = inputs["input_ids"].shape[1] - p_max
            cont = inputs["input_ids"][:, p_max:]
            mask = inputs["attention_mask"][:, p_max:].float()
            # the base model gives hidden states; the LM head runs on the continuation slice only,
            # which keeps the (N, L, vocab) logits small for a 152k vocabulary
            hidden = self.model.model(**inputs, use_cache=False).last_hidden_state
            logits = self.model.lm_head(hidden[:, p_max - 1 : p_max - 1 + lmax]).float()
            logp = torch.log_softmax(logits, dim=-1).gather(-1, cont.unsqueeze(-1)).squeeze(-1) * mask
            r = 0
            for j, i in enumerate(group):
                sl = slice(r, r + rows[j])
                out[i] = Scored(logp[sl], mask[sl], hidden[sl, pads[j]:], encs[i].length)
                r += rows[j]
        return out

    # -- time-aligned features -------------------------------------------------------------------
    def time_features(self, enc: Encoded, hidden: torch.Tensor, span_s: float, hop_s: float,
                      response_len: int, response_intervals: list[tuple[float, float]] | None = None):
        """f_a, f_v, f_t, f_r (T, D) and their masks (T,) on the grid [0, span_s) with hop ``hop_s``.

        - f_a(t): mean LM state of audio tokens whose 40 ms slot starts in bin t;
        - f_v(t): mean LM state of the image tokens of frames sampled in bin t;
        - f_t(t): mean LM state of transcript-line tokens in the prompt whose line covers bin t;
        - f_r(t): mean LM state of the response tokens, placed on the bins the response claims
          (its answer intervals) or, without intervals, on every bin.
        ``hidden`` is one row (S, D) of :meth:`score`'s output.
        """
        ids = enc.inputs["input_ids"][0].to(hidden.device)
        p, d = enc.length, hidden.shape[-1]
        t_bins = max(1, int(round(span_s / hop_s)))
        feats = {k: torch.zeros(t_bins, d, device=hidden.device, dtype=hidden.dtype) for k in "avtr"}
        counts = {k: torch.zeros(t_bins, device=hidden.device) for k in "avtr"}

        def add(key: str, vec: torch.Tensor, t0: float, t1: float | None = None) -> None:
            b0 = int(t0 // hop_s)
            b1 = b0 + 1 if t1 is None else max(b0 + 1, int(-(-t1 // hop_s)))
            for b in range(max(b0, 0), min(b1, t_bins)):
                feats[key][b] = feats[key][b] + vec
                counts[key][b] += 1

        audio_pos = (ids == self.processor.ids[AUDIO]).nonzero().flatten()
        for pos, t in zip(audio_pos.tolist(), enc.audio_times.tolist(), strict=False):
            add("a", hidden[pos], t)
        image_pos = (ids == self.processor.ids[IMAGE]).nonzero().flatten()
        if len(enc.image_times):
            per = len(image_pos) // len(enc.image_times)
            for i, t in enumerate(enc.image_times):
                add("v", hidden[image_pos[i * per : (i + 1) * per]].mean(0), t)
        for a, b, t0, t1 in enc.text_spans:
            add("t", hidden[a:b].mean(0), t0, t1)
        if response_len > 0:
            r = hidden[p : p + response_len].mean(0)
            for t0, t1 in response_intervals or [(0.0, span_s)]:
                add("r", r, t0, t1)
        out, masks = {}, {}
        for k in "avtr":
            masks[k] = (counts[k] > 0).float()
            out[k] = feats[k] / counts[k].clamp(min=1).unsqueeze(-1)
        return out, masks
