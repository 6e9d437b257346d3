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

import numpy as np
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
    """Output of :meth:`OmniPolicy.score` for N continuations of one prompt.

    The prompt's last-layer states are held once (every row shares them: causal attention makes a
    prompt's states independent of what follows it); ``hidden`` builds the (N, S, D) rows on demand."""

    token_logprobs: torch.Tensor  # (N, L) log pi(y_t | x, y_<t); 0 where mask is 0
    mask: torch.Tensor  # (N, L) 1 for real continuation tokens
    prompt_hidden: torch.Tensor  # (P, D) last-layer LM states of the prompt
    cont_hidden: torch.Tensor  # (N, L, D) last-layer LM states of each continuation (junk where mask is 0)
    prompt_len: int

    def row_hidden(self, i: int) -> torch.Tensor:
        """(P + L, D) states of prompt + continuation ``i``, the layout time_features reads."""
        return torch.cat([self.prompt_hidden, self.cont_hidden[i]])

    @property
    def hidden(self) -> torch.Tensor:
        n = self.cont_hidden.shape[0]
        return torch.cat([self.prompt_hidden.expand(n, -1, -1), self.cont_hidden], 1)

class OmniPolicy(OmniThinker):
    """A Qwen2.5-Omni thinker and its processor, with the calls RAFT needs. Loading, saving, stop
    and suppressed ids come from :class:`omni.policy.OmniThinker`, shared with the evaluator."""

    @classmethod
    def build(cls, cfg: TrainConfig) -> OmniPolicy:
        path = cfg.model_path or build_tiny(cfg)
        return cls.from_pretrained(path, cfg.dtype, cfg.max_audio_s)

    # -- sampling --------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, enc: Encoded, k: int, max_new_tokens: int, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False, shared: bool = True) -> list[list[int]]:
        """K sampled continuations of one prompt, each cut after its first stop token (kept)."""
        return self.generate_batch([enc], k, max_new_tokens, temperature, top_p, greedy=greedy, shared=shared)[0]

    @torch.no_grad()
    def generate_batch(self, encs: list[Encoded], k: int, max_new_tokens: int, temperature: float = 1.0,
                       top_p: float = 1.0, greedy: bool = False, batched: bool = True, shared: bool = True
                       ) -> list[list[list[int]]]:
        """K continuations of each prompt; with ``batched`` all prompts that carry the same kinds of media
        are decoded together (else one call per prompt). ``greedy`` decodes deterministically (tests);
        otherwise samples with temperature / top_p.

        ``shared`` (``train.share_prompt``): each prompt is prefilled once and its KV cache expanded
        to K rows (:meth:`_decode_shared`); else the prompt is copied into K rows of one ``generate``."""
        out_all: list[list[list[int]]] = [[] for _ in encs]
        for group in self._groups(encs, batched):
            if shared:
                rows = self._decode_shared([encs[i] for i in group], k, max_new_tokens, temperature, top_p, greedy)
            else:
                inputs, _, p_max = self._collate([encs[i] for i in group], [k] * len(group))
                rows = self.sample_ids(inputs, p_max, max_new_tokens, temperature, top_p, greedy)
            for j, i in enumerate(group):
                out_all[i].extend(rows[j * k : (j + 1) * k])
        return out_all

    def _core(self):
        """The thinker's base model (encoders + LM, no head), through a peft wrapper when LoRA is on."""
        return self.model.model

    def _rope_index(self, inputs: dict[str, torch.Tensor], valid: torch.Tensor) -> torch.Tensor:
        """(3, B, S) mRoPE positions of the ``valid`` tokens, as the thinker computes them itself."""
        fmask = inputs.get("feature_attention_mask")
        pos, _ = self._core().get_rope_index(
            inputs["input_ids"], inputs.get("image_grid_thw"), None, valid.long(), False,
            fmask.sum(-1) if fmask is not None else None, None)
        return pos

    @torch.no_grad()
    def _decode_shared(self, encs: list[Encoded], k: int, max_new_tokens: int, temperature: float, top_p: float,
                       greedy: bool) -> list[list[int]]:
        """Prefill the B prompts once (encoders included), expand the KV cache to B x K rows, then decode
        token by token. Sampling applies what ``generate`` applies here (suppressed ids, temperature,
        top-p, no top-k) with transformers' own logits processors."""
        from transformers import DynamicCache
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            SuppressTokensLogitsProcessor,
            TemperatureLogitsWarper,
            TopPLogitsWarper,
        )

        was_training = self.model.training
        self.model.eval()
        try:
            inputs, _, _ = self._collate(encs, [1] * len(encs))
            att = inputs["attention_mask"]
            dev = att.device
            pos = self._rope_index(inputs, att)
            nxt_pos = torch.where(att.bool(), pos.amax(0), 0).amax(-1) + 1  # (B,) where the answer's text starts
            core = self._core()
            cache = DynamicCache(config=self.model.config.get_text_config())
            h = core(**inputs, position_ids=pos, cache=cache, use_cache=True).last_hidden_state[:, -1]
            idx = torch.arange(len(encs), device=dev).repeat_interleave(k)
            cache.batch_select_indices(idx)
            att, nxt_pos, logits = att[idx], nxt_pos[idx], self.model.lm_head(h[idx])
            procs = LogitsProcessorList([SuppressTokensLogitsProcessor(self.suppress_ids, device=dev)])
            if not greedy:
                if temperature != 1.0:
                    procs.append(TemperatureLogitsWarper(temperature))
                if top_p < 1.0:
                    procs.append(TopPLogitsWarper(top_p))
            stop = torch.tensor(self.stop_ids, device=dev)
            pad = self.processor.ids[EOS]
            done = torch.zeros(len(idx), dtype=torch.bool, device=dev)
            toks: list[torch.Tensor] = []
            for t in range(max_new_tokens):
                seen = torch.stack(toks, 1) if toks else torch.zeros((len(idx), 0), dtype=torch.long, device=dev)
                scores = procs(seen, logits.float())
                tok = scores.argmax(-1) if greedy else torch.multinomial(scores.softmax(-1), 1).squeeze(-1)
                tok = torch.where(done, pad, tok)
                toks.append(tok)
                done |= torch.isin(tok, stop)
                if bool(done.all()) or t == max_new_tokens - 1:
                    break
                att = torch.cat([att, torch.ones_like(att[:, :1])], 1)
                p = (nxt_pos + t).view(1, -1, 1).expand(3, -1, 1)
                h = core(input_ids=tok[:, None], attention_mask=att, position_ids=p, cache=cache,
                         use_cache=True).last_hidden_state[:, -1]
                logits = self.model.lm_head(h)
        finally:
            self.model.train(was_training)
        rows = torch.stack(toks, 1).tolist()
        return [row[: next((t + 1 for t, tok in enumerate(row) if tok in self.stop_ids), len(row))] for row in rows]

    def reference_ids(self, text: str) -> list[int]:
        """Token ids of a reference answer, terminated like a chat turn so the model learns to stop."""
        return self.processor.encode_text(text) + [self.processor.ids[IM_END]]

    # -- scoring ---------------------------------------------------------------------------------
    def score(self, enc: Encoded, continuations: list[list[int]], shared: bool = True) -> Scored:
        """log pi of each continuation given the prompt, with gradients, in one batched forward."""
        return self.score_batch([enc], [continuations], shared=shared)[0]

    def score_batch(self, encs: list[Encoded], continuations: list[list[list[int]]], batched: bool = True,
                    shared: bool = True) -> list[Scored]:
        """:meth:`score` for several prompts. With ``batched``, prompts that carry the same kinds of media
        go through one forward. ``shared`` (``train.share_prompt``): one packed row per prompt, the
        prompt once and its continuations behind it under a block mask (:mod:`raft.packing`); else
        today's layout, the prompt copied into each continuation's row (left-padded)."""
        out: list[Scored | None] = [None] * len(encs)
        score_group = self._score_packed if shared else self._score_copied
        for group in self._groups(encs, batched):
            for i, sc in zip(group, score_group([encs[i] for i in group], [continuations[i] for i in group]),
                             strict=True):
                out[i] = sc
        return out

    def _logprobs(self, states: torch.Tensor, cont: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # the LM head runs on the predicting states only, which keeps the (N, L, vocab) logits small
        # for a 152k vocabulary
        logits = self.model.lm_head(states).float()
        return torch.log_softmax(logits, dim=-1).gather(-1, cont.unsqueeze(-1)).squeeze(-1) * mask

    def _score_copied(self, encs: list[Encoded], conts_per: list[list[list[int]]]) -> list[Scored]:
        rows = [len(c) for c in conts_per]
        conts = [c for cs in conts_per for c in cs]
        inputs, pads, p_max = self._collate(encs, rows, conts)
        lmax = inputs["input_ids"].shape[1] - p_max
        mask = inputs["attention_mask"][:, p_max:].float()
        hidden = self._core()(**inputs, use_cache=False).last_hidden_state
        logp = self._logprobs(hidden[:, p_max - 1 : p_max - 1 + lmax], inputs["input_ids"][:, p_max:], mask)
        out, r = [], 0
        for j, e in enumerate(encs):
            sl = slice(r, r + rows[j])
            h = hidden[sl, pads[j]:]
            out.append(Scored(logp[sl], mask[sl], h[0, : e.length], h[:, e.length :], e.length))
            r += rows[j]
        return out

    def _score_packed(self, encs: list[Encoded], conts_per: list[list[list[int]]]) -> list[Scored]:
        from raft.packing import block_mask, mask_for, pack, packed_positions

        g = pack([e.inputs["input_ids"][0] for e in encs], conts_per, self.processor.ids[EOS])
        inputs = self.to_model({"input_ids": g.input_ids, **self._media(encs, [1] * len(encs))})
        dev = inputs["input_ids"].device
        pos = packed_positions(self._rope_index(inputs, (g.segments == 0).to(dev)), g)
        dtype = next(self.model.parameters()).dtype
        allowed = mask_for(self.model.config._attn_implementation, block_mask(g.segments), dtype).to(dev)
        layer_types = set(self.model.config.get_text_config().layer_types or ["full_attention"])
        hidden = self._core()(**inputs, attention_mask={t: allowed for t in layer_types}, position_ids=pos,
                              use_cache=False).last_hidden_state
        row_of, mask = g.row_of.to(dev), g.mask.to(dev)
        logp = self._logprobs(hidden[row_of[:, None], g.pred_pos.to(dev)], g.cont_ids.to(dev), mask)
        cont_h = hidden[row_of[:, None], g.token_pos.to(dev)]
        out, r = [], 0
        for j, e in enumerate(encs):
            sl = slice(r, r + len(conts_per[j]))
            out.append(Scored(logp[sl], mask[sl], hidden[j, : e.length], cont_h[sl], e.length))
            r += len(conts_per[j])
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
        ``hidden`` is one row (S, D): prompt then response (:meth:`Scored.row_hidden`).

        Each feature is (membership matrix M (T, n)) @ (n item vectors) / M.sum(1): one matmul per
        kind instead of a Python loop per audio token (750 tokens for 30 s of audio).
        """
        ids = enc.inputs["input_ids"][0].to(hidden.device)
        p = enc.length
        t_bins = max(1, int(round(span_s / hop_s)))
        audio_pos = (ids == self.processor.ids[AUDIO]).nonzero().flatten()
        n_a = min(len(audio_pos), len(enc.audio_times))
        items = {"a": (hidden[audio_pos[:n_a]], np.asarray(enc.audio_times[:n_a], dtype=float), None)}
        image_pos = (ids == self.processor.ids[IMAGE]).nonzero().flatten()
        n_v = len(enc.image_times)
        if n_v:
            per = len(image_pos) // n_v
            vecs = hidden[image_pos[: n_v * per]].view(n_v, per, -1).mean(1)
            items["v"] = (vecs, np.asarray(enc.image_times, dtype=float), None)
        if enc.text_spans:
            w = torch.zeros(len(enc.text_spans), hidden.shape[0], device=hidden.device, dtype=hidden.dtype)
            for i, (a, b, _, _) in enumerate(enc.text_spans):
                w[i, a:b] = 1.0 / (b - a)
            items["t"] = (w @ hidden, np.array([s[2] for s in enc.text_spans], dtype=float),
                          np.array([s[3] for s in enc.text_spans], dtype=float))
        if response_len > 0:
            ivs = response_intervals or [(0.0, span_s)]
            r = hidden[p : p + response_len].mean(0, keepdim=True).expand(len(ivs), -1)
            items["r"] = (r, np.array([a for a, _ in ivs], dtype=float), np.array([b for _, b in ivs], dtype=float))
        out, masks = {}, {}
        for key in "avtr":
            vecs, t0, t1 = items.get(key, (hidden[:0], np.zeros(0), None))
            m = torch.from_numpy(_bin_membership(t0, t1, hop_s, t_bins)).to(hidden.device, hidden.dtype)
            counts = m.sum(1)
            masks[key] = (counts > 0).float()
            out[key] = (m @ vecs) / counts.clamp(min=1).unsqueeze(-1)
        return out, masks


def _bin_membership(t0: np.ndarray, t1: np.ndarray | None, hop_s: float, t_bins: int) -> np.ndarray:
    """(T, n) 0/1: item i covers bin b. A point (t1 None) covers the bin its time falls in; an interval
    [t0, t1) covers bins floor(t0 / hop) .. ceil(t1 / hop) - 1 (at least one). Python's float floor
    division (numpy's matches it, 1.0 // 0.1 == 9.0), so bins agree with the loop this replaced."""
    b0 = np.floor_divide(t0, hop_s).astype(np.int64)
    b1 = b0 + 1 if t1 is None else np.maximum(b0 + 1, (-np.floor_divide(-t1, hop_s)).astype(np.int64))
    bins = np.arange(t_bins)[:, None]
    return ((bins >= b0[None, :]) & (bins < b1[None, :])).astype(np.float32)
