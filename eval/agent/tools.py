"""The six perception tools the agent may call: specs, argument validation, and one calling path.

A tool is a function in ``ServeConfig.tools_module`` (``perception.tools`` by default) taking a
clip URI and an optional span in media-file seconds and returning a JSON-serialisable dict.
The same :func:`invoke_tool` runs it in-process (evaluation without Serve, tests, benchmarks) and
inside each Serve tool deployment, so both paths execute identical code.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import inspect
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ToolArgs(BaseModel):
    """Arguments every tool takes. ``clip`` indexes the sample's clips (CSNL has two scenes)."""

    model_config = ConfigDict(extra="forbid")
    clip: int = Field(0, ge=0, description="Which of the sample's clips (0 = first).")
    start_s: float | None = Field(None, ge=0, description="Span start, seconds from the clip's start (None: 0).")
    end_s: float | None = Field(None, ge=0, description="Span end, seconds from the clip's start (None: clip end).")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str

    def schema(self) -> dict:
        """OpenAI-style function spec (what the prompt shows the model)."""
        return {"name": self.name, "description": self.description, "parameters": ToolArgs.model_json_schema()}


TOOLS: dict[str, ToolSpec] = {
    s.name: s
    for s in [
        ToolSpec("diarize", "Who speaks when: speaker turns [{start, end, speaker}] with anonymous speaker labels."),
        ToolSpec("transcribe", "Speech to text: segments [{start, end, text, speaker}]."),
        ToolSpec("detect_faces", "Faces per sampled frame: boxes (normalized x1, y1, x2, y2) with scores."),
        ToolSpec("track_faces", "Face tracks across frames: [{track_id, boxes}] (one per visible person)."),
        ToolSpec("sync_check", "Audio-visual sync per face track: offset (s) and confidence that its lips match the audio."),
        ToolSpec("active_speaker", "Per face track, speaking scores over time [{track_id, times, scores}]."),
    ]
}


class ToolCallError(ValueError):
    """A tool call the agent made that cannot run: unknown tool or invalid arguments (named)."""


def validate_call(name: Any, arguments: Any, num_clips: int) -> ToolArgs:
    """Check a model-produced tool call; the error names the tool and the offending argument."""
    if not isinstance(name, str) or name not in TOOLS:
        raise ToolCallError(f"unknown tool {name!r} (known: {', '.join(TOOLS)})")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError as exc:
            raise ToolCallError(f"{name}: arguments are not valid JSON: {exc}") from exc
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise ToolCallError(f"{name}: arguments must be a JSON object, got {type(arguments).__name__}")
    try:
        args = ToolArgs.model_validate(dict(arguments))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        raise ToolCallError(f"{name}: argument '{where}': {first['msg']}") from exc
    if args.clip >= num_clips:
        raise ToolCallError(f"{name}: argument 'clip': {args.clip} is out of range (sample has {num_clips} clip(s))")
    if args.start_s is not None and args.end_s is not None and args.end_s <= args.start_s:
        raise ToolCallError(f"{name}: argument 'end_s': {args.end_s} is not after start_s {args.start_s}")
    return args


def load_tool(module: str, name: str) -> Callable[..., dict]:
    if name not in TOOLS:
        raise ToolCallError(f"unknown tool {name!r}")
    mod = importlib.import_module(module)
    fn = getattr(mod, name, None)
    if fn is None:
        raise ToolCallError(f"tool module {module!r} has no function {name!r}")
    return fn


def invoke_tool(
    fn: Callable[..., dict], clip_uri: str, start_s: float | None, end_s: float | None,
    audio_uri: str | None = None, **extra: Any,
) -> dict:
    """Call a tool function with the keywords it accepts (backends differ in their optional ones).

    None values are left out so the function's own defaults apply (start 0, end of file).
    """
    params = inspect.signature(fn).parameters
    kwargs = {"start_s": start_s, "end_s": end_s, "audio_uri": audio_uri, **extra}
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in kwargs.items() if v is not None and (accepts_any or k in params)}
    out = fn(clip_uri, **kwargs)
    if not isinstance(out, dict):
        raise TypeError(f"tool {getattr(fn, '__name__', fn)!r} returned {type(out).__name__}, expected a dict")
    return out


class ToolRunner(Protocol):
    """Runs one validated tool call; raises TimeoutError or returns the tool's dict."""

    def __call__(
        self, name: str, clip_uri: str, start_s: float | None, end_s: float | None, timeout_s: float,
        audio_uri: str | None = None,
    ) -> dict: ...


class InProcessTools:
    """Tools called in this process (evaluation without Serve, the baseline in tests, benchmarks)."""

    def __init__(self, module: str = "perception.tools", extra: dict | None = None):
        self.module = module
        self.extra = extra or {}
        self._fns: dict[str, Callable[..., dict]] = {}
        # One worker thread per tool call keeps a hung tool from blocking the caller past its timeout.
        self._pool = cf.ThreadPoolExecutor(max_workers=4, thread_name_prefix="amuse-tool")

    def __call__(
        self, name: str, clip_uri: str, start_s: float | None, end_s: float | None, timeout_s: float,
        audio_uri: str | None = None,
    ) -> dict:
        if name not in self._fns:
            self._fns[name] = load_tool(self.module, name)
        fut = self._pool.submit(invoke_tool, self._fns[name], clip_uri, start_s, end_s, audio_uri, **self.extra)
        try:
            return fut.result(timeout=timeout_s)
        except cf.TimeoutError as exc:
            fut.cancel()
            raise TimeoutError(f"tool {name!r} did not finish within {timeout_s:g} s") from exc


def timed_call(
    runner: ToolRunner, name: str, clip_uri: str, args: ToolArgs, timeout_s: float,
    span: tuple[float, float] | None = None, audio_uri: str | None = None,
) -> dict:
    """Run a tool and describe the outcome as one trace entry (errors become entries, not exceptions).

    Clips are windows ``span`` of longer media files. The agent speaks clip-relative seconds, as
    the questions do; tools take and return media-file seconds. This converts both ways, so a
    call without a span covers exactly the clip.
    """
    offset = span[0] if span else 0.0
    start = offset + (args.start_s or 0.0) if (span or args.start_s is not None) else None
    end = offset + args.end_s if args.end_s is not None else (span[1] if span else None)
    if span and end is not None:
        end = min(end, span[1])
    t0 = time.perf_counter()
    entry: dict[str, Any] = {"tool": name, "arguments": args.model_dump(), "clip_uri": clip_uri}
    try:
        entry["result"] = shift_times(runner(name, clip_uri, start, end, timeout_s, audio_uri), -offset)
        entry["ok"] = True
    except TimeoutError as exc:
        entry.update(ok=False, error=f"timeout: {exc}")
    except Exception as exc:  # a failing backend is reported to the agent, which may answer anyway
        entry.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    entry["latency_s"] = round(time.perf_counter() - t0, 4)
    return entry


_TIME_KEYS = ("start", "end", "t", "start_s", "end_s", "from", "to")


def shift_times(value: Any, offset: float) -> Any:
    """Copy of a tool result with every time field (at any depth) moved by ``offset`` seconds."""
    if not offset:
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in _TIME_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = round(float(v) + offset, 4)
            elif k == "times" and isinstance(v, list):
                out[k] = [round(float(t) + offset, 4) for t in v]
            else:
                out[k] = shift_times(v, offset)
        return out
    if isinstance(value, list):
        return [shift_times(v, offset) for v in value]
    return value
