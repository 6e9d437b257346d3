"""One packed row per prompt: the prompt once, then its continuations, each seeing the prompt and itself.

Scoring [y*, y_1..y_K] of a prompt used to copy the prompt (ids, mel features, pixels) into each of the
K + 1 rows, so the encoders and the prompt's decoder forward ran K + 1 times. Here a prompt's row is

    [ prompt (P tokens) | y_0 (L_0) | y_1 (L_1) | ... | y_K (L_K) | right padding ]

with a block attention mask: prompt tokens are causal among themselves; a token of y_k sees the
whole prompt and the earlier tokens of y_k, never another continuation. Each continuation's
positions (mRoPE, all three axes alike, as for text) restart right after the prompt's last position,
so every continuation is scored exactly as if it followed the prompt alone. The prompt runs once
inside the autograd graph, so the encoders' projectors and the cross-modal layers (SRA) get the same
gradient as before: the sum over rows of what each copy used to receive.

Padding tokens attend only to themselves: a query row with no allowed key makes SDPA return NaN,
which would reach the weight gradients through 0 * NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PackedGroup:
    """Model inputs of B packed rows and where each continuation's tokens and predictions sit."""

    input_ids: torch.Tensor  # (B, T) right-padded
    segments: torch.Tensor  # (B, T) 0 prompt, 1 + k continuation k, -1 padding
    prompt_lens: list[int]
    row_of: torch.Tensor  # (N,) packed row of each continuation
    token_pos: torch.Tensor  # (N, L) column of each continuation token (0 where masked)
    pred_pos: torch.Tensor  # (N, L) column whose state predicts that token (the previous one)
    mask: torch.Tensor  # (N, L) 1 for real tokens
    cont_ids: torch.Tensor  # (N, L) token ids (pad where masked)


def pack(prompt_ids: list[torch.Tensor], conts: list[list[list[int]]], pad_id: int) -> PackedGroup:
    """Lay out ``prompt_ids[b]`` followed by each of ``conts[b]`` in one right-padded row per prompt."""
    rows = [len(p) + sum(len(c) for c in cs) for p, cs in zip(prompt_ids, conts, strict=True)]
    b, t = len(rows), max(rows)
    n = sum(len(cs) for cs in conts)
    lmax = max(1, max((len(c) for cs in conts for c in cs), default=1))
    ids = torch.full((b, t), pad_id, dtype=torch.long)
    seg = torch.full((b, t), -1, dtype=torch.long)
    row_of = torch.zeros(n, dtype=torch.long)
    token_pos = torch.zeros((n, lmax), dtype=torch.long)
    pred_pos = torch.zeros((n, lmax), dtype=torch.long)
    mask = torch.zeros((n, lmax))
    cont_ids = torch.full((n, lmax), pad_id, dtype=torch.long)
    r = 0
    for i, (p, cs) in enumerate(zip(prompt_ids, conts, strict=True)):
        plen = len(p)
        ids[i, :plen] = p
        seg[i, :plen] = 0
        col = plen
        for k, c in enumerate(cs):
            ln = len(c)
            row_of[r] = i
            if ln:
                cols = torch.arange(col, col + ln)
                ids[i, cols] = torch.tensor(c)
                seg[i, cols] = 1 + k
                token_pos[r, :ln] = cols
                # the first token is predicted by the prompt's last state, the others by their predecessor
                pred_pos[r, :ln] = torch.cat([torch.tensor([plen - 1]), cols[:-1]])
                mask[r, :ln] = 1
                cont_ids[r, :ln] = torch.tensor(c)
            col += ln
            r += 1
    return PackedGroup(ids, seg, [len(p) for p in prompt_ids], row_of, token_pos, pred_pos, mask, cont_ids)


def block_mask(segments: torch.Tensor) -> torch.Tensor:
    """(B, T) segment ids -> (B, 1, T, T) bool, True where query (row) may attend key (column)."""
    t = segments.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    q, k = segments[:, :, None], segments[:, None, :]
    allowed = causal & (q >= 0) & ((k == 0) | (k == q))
    allowed |= torch.eye(t, dtype=torch.bool)  # padding sees itself (no empty query rows)
    return allowed[:, None]


def packed_positions(prompt_pos: torch.Tensor, group: PackedGroup) -> torch.Tensor:
    """(3, B, P_max) prompt mRoPE positions (valid up to each prompt length) -> (3, B, T) for the packed rows:
    the prompt's own, and for continuation tokens next + j on all three axes, next being the prompt's
    largest position + 1 (where the text after a prompt continues)."""
    b, t = group.input_ids.shape
    pos = torch.zeros((3, b, t), dtype=torch.long, device=prompt_pos.device)
    for i, plen in enumerate(group.prompt_lens):
        pos[:, i, :plen] = prompt_pos[:, i, :plen]
        nxt = int(prompt_pos[:, i, :plen].max()) + 1
        seg = group.segments[i]
        for s in seg[plen:].unique().tolist():
            if s <= 0:
                continue
            cols = (seg == s).nonzero().flatten()
            pos[:, i, cols] = nxt + torch.arange(len(cols), device=pos.device)
    return pos


def mask_for(impl: str | None, allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The block mask in the form the model's attention implementation adds or applies."""
    if impl in (None, "sdpa"):
        return allowed
    if impl == "eager":
        return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    raise ValueError(f"train.share_prompt: attention implementation {impl!r} takes no dense block mask "
                     "(use sdpa or eager, or set train.share_prompt=false)")
