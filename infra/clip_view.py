"""What a model is shown of a clip span: one rule for training and evaluation.

RAFT's rollouts (``raft.data.load_media``) and every evaluation adapter that sees media
(``eval.models.clip_media``) read a clip through :func:`clip_view`, so a checkpoint is evaluated on the
same kind of input it was trained on: the audio of the span's first ``max_audio_s`` seconds (16 kHz mono),
and ``num_frames`` frames sampled evenly over that same window, resized to ``frame_size`` square.
Only the budgets (seconds, frames, pixels) come from each side's config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from infra.media import MediaError, decode_audio, iter_frames
from infra.storage import StorageConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipView:
    """The budgets of a view: audio seconds from the span's start, frames over that window, frame side."""

    max_audio_s: float
    num_frames: int
    frame_size: int

    def window(self, start_s: float, end_s: float | None) -> tuple[float, float]:
        """[start, end) of the encoded window: the span's first ``max_audio_s`` seconds (all of it when shorter)."""
        stop = start_s + self.max_audio_s
        return start_s, stop if end_s is None else min(float(end_s), stop)


def clip_view(media_uri: str, audio_uri: str | None, start_s: float, end_s: float | None, view: ClipView,
              cfg: StorageConfig | None = None, audio: bool = True, frames: bool = True,
              ) -> tuple[np.ndarray | None, list[tuple[float, np.ndarray]]]:
    """(audio or None, [(t from span start, frame_size x frame_size x 3 uint8)]) of one clip span.

    Unreadable media gives None / [] with a warning naming the file: the model then answers from the text,
    in training as in evaluation."""
    start, stop = view.window(float(start_s), end_s)
    wav = None
    if audio:
        try:
            wav = decode_audio(audio_uri or media_uri, start, stop, 16000, cfg)
        except MediaError as exc:
            log.warning("no audio shown for %s: %s", audio_uri or media_uri, exc)
    shown: list[tuple[float, np.ndarray]] = []
    if frames and view.num_frames > 0 and stop > start:
        from PIL import Image

        try:
            for t, img in iter_frames(media_uri, start, stop, view.num_frames / (stop - start), None, cfg):
                square = Image.fromarray(img).resize((view.frame_size, view.frame_size))
                shown.append((t - start, np.asarray(square)))
                if len(shown) == view.num_frames:
                    break
        except MediaError as exc:
            log.warning("no frames shown for %s: %s", media_uri, exc)
            shown = []
    return wav, shown
