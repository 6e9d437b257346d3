"""Perception-backed verification: the expensive path of the reward components (DESIGN §7).

By default a reward component scores a candidate against the clip's ``pred_*`` columns, which
curation wrote. With ``train.verify`` naming components, the scorer re-runs the matching
perception tool (``perception.tools``, in process) on the clip's span and scores the candidate's
claims against what perception observes now, instead of the stored metadata:

- ``diarization``: ``diarize`` -> ``pred_turns`` and ``pred_speech``;
- ``speech``: ``transcribe`` (no speaker pass) -> ``pred_transcript``;
- ``sync`` and ``face``: ``active_speaker`` (face tracking + AV sync) -> ``pred_active_speaker``;
  the face tracks' boxes (visibility) still come from the clip's metadata, and tracks are matched by
  id, which holds when the tool runs with the same perception config and span as curation did.

Each tool runs at most once per (tool, clip, span) in one process: :class:`Verifier` caches the
result, so every candidate of a prompt, and every later step that sees the clip again, reuses it.
A tool that fails (missing media, a backend that is not installed) is logged and cached as "no
override", so the component falls back to the metadata for that clip, identically on every path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

ToolFn = Callable[[dict, float, float, dict | None], dict]
# component name -> tool key; components sharing a key share one tool call per clip span
COMPONENT_TOOL: dict[str, str] = {}
TOOLS: dict[str, ToolFn] = {}


def register_tool(key: str, *components: str):
    """Register ``fn(clip, start_s, end_s, perception_cfg) -> {pred_column: value}`` for ``components``."""

    def deco(fn: ToolFn) -> ToolFn:
        TOOLS[key] = fn
        for c in components:
            COMPONENT_TOOL[c] = key
        return fn

    return deco


def _media(clip: dict) -> tuple[str, str | None]:
    return clip.get("media_uri") or clip.get("audio_uri"), clip.get("audio_uri")


@register_tool("diarize", "diarization")
def _diarize(clip: dict, start: float, end: float, pcfg: dict | None) -> dict:
    from perception.tools import diarize

    uri, audio = _media(clip)
    r = diarize(uri, start, end, audio_uri=audio, cfg=pcfg)
    return {"pred_turns": r["turns"], "pred_speech": r["speech"]}


@register_tool("transcribe", "speech")
def _transcribe(clip: dict, start: float, end: float, pcfg: dict | None) -> dict:
    from perception.tools import transcribe

    uri, audio = _media(clip)
    r = transcribe(uri, start, end, audio_uri=audio, with_speakers=False, cfg=pcfg)
    return {"pred_transcript": r["segments"]}


@register_tool("active_speaker", "sync", "face")
def _active_speaker(clip: dict, start: float, end: float, pcfg: dict | None) -> dict:
    from perception.tools import active_speaker

    uri, audio = _media(clip)
    r = active_speaker(uri, start, end, audio_uri=audio, cfg=pcfg)
    return {"pred_active_speaker": r["tracks"]}


class Verifier:
    """Replaces a clip's pred_* columns by fresh perception on its span, cached per (tool, clip, span)."""

    def __init__(self, components: list[str] | tuple[str, ...] = (), perception: dict | None = None,
                 span_s: float | None = None):
        unknown = [c for c in components if c not in COMPONENT_TOOL]
        if unknown:
            raise ValueError(f"train.verify: no perception tool verifies {unknown} (known: {sorted(COMPONENT_TOOL)})")
        self.tools = sorted({COMPONENT_TOOL[c] for c in components})
        self.perception, self.span_s = perception, span_s
        self.cache: dict[tuple, dict] = {}
        self.calls = 0  # tool runs (cache misses), for tests and benches
        self._threads_set = False

    def span(self, clip: dict) -> tuple[float, float]:
        start, end = float(clip["start_s"]), float(clip["end_s"])
        return start, end if self.span_s is None else min(end, start + self.span_s)

    def _run(self, key: str, clip: dict, start: float, end: float) -> dict:
        if not self._threads_set:  # one intra-op thread per process, as perception's own actors do
            from perception.actors import as_config, set_threads

            set_threads(as_config(self.perception))
            self._threads_set = True
        self.calls += 1
        try:
            return TOOLS[key](clip, start, end, self.perception)
        except Exception as exc:  # the reward must not stop training; the metadata view stands in
            log.warning("verify %s on %s [%.1f, %.1f] failed: %s: %s", key, clip.get("clip_id"), start, end,
                        type(exc).__name__, exc)
            return {}

    def view(self, clip: dict) -> dict:
        """The clip as the components should see it: pred_* overridden by the verifying tools' output."""
        if not self.tools:
            return clip
        start, end = self.span(clip)
        out = dict(clip)
        for key in self.tools:
            ck = (key, clip["clip_id"], start, end)
            if ck not in self.cache:
                self.cache[ck] = self._run(key, clip, start, end)
            out.update(self.cache[ck])
        return out

    def clear(self) -> None:
        self.cache.clear()
