"""``report.html``: the report's tables and plots, every agentic answer's trace (plan, tool calls with
arguments and results, reflection, answer), and a timeline of predicted against reference turns for a
sample with its clip playable beside it. Rendered from ``templates/report.html.j2`` with Jinja2."""

from __future__ import annotations

import json
import os
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from eval.report import markdown
from eval.tasks import task_names
from infra import storage

RESULT_CHARS = 4000  # a tool result is shown up to this many characters (transcripts can be long)
WIDTH, ROW_H, LABEL_W = 760, 22, 150


def _env() -> Environment:
    return Environment(loader=PackageLoader("eval.report", "templates"), autoescape=select_autoescape(["html", "j2"]))


def _json(value: Any, limit: int = RESULT_CHARS) -> str:
    text = json.dumps(value, indent=1, default=str)
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more characters)"


def traces(predictions: list[dict], samples: dict[str, dict]) -> list[dict]:
    """Agentic predictions as {model, task, question, plan, calls, reflect, answer, score}, in task order."""
    order = {t: i for i, t in enumerate(task_names())}
    out = []
    for p in sorted((p for p in predictions if p["mode"] == "agentic"),
                    key=lambda p: (p["model"], order.get(p["task"], 99), p["sample_id"])):
        trace = json.loads(p.get("trace") or "{}") or {}
        calls = [{"tool": c.get("tool"), "arguments": _json(c.get("arguments")), "ok": c.get("ok", "error" not in c),
                  "result": _json(c["result"]) if "result" in c else None, "error": c.get("error")}
                 for c in trace.get("act") or []]
        sample = samples.get(p["sample_id"], {})
        out.append({"model": p["model"], "task": p["task"], "sample_id": p["sample_id"],
                    "question": sample.get("question", ""), "plan": trace.get("plan"), "calls": calls,
                    "reflect": trace.get("reflect"), "answer": trace.get("answer", p.get("parsed_answer")),
                    "score": p["score"], "error": p.get("error"), "stop": trace.get("stop")})
    return out


def timeline(sample: dict, clip: dict, report_dir: str) -> dict:
    """Bars for the clip's reference (gt_turns) and predicted (pred_turns) speakers, in SVG pixels, and the
    media element's source: the media path relative to the report, with the clip's span as a media fragment."""
    start, end = float(clip["start_s"]), float(clip["end_s"])
    scale = (WIDTH - LABEL_W) / max(end - start, 1e-6)
    rows, bars = [], []
    for kind, column in (("reference", "gt_turns"), ("predicted", "pred_turns")):
        turns = clip.get(column) or []
        for speaker in sorted({t["speaker"] for t in turns}):
            y = len(rows) * ROW_H
            rows.append({"label": f"{kind}: {speaker}", "y": y + ROW_H * 0.7, "kind": kind})
            for t in turns:
                if t["speaker"] != speaker:
                    continue
                a, b = max(float(t["start"]), start), min(float(t["end"]), end)
                if b > a:
                    bars.append({"x": LABEL_W + (a - start) * scale, "y": y + 3, "w": (b - a) * scale, "h": ROW_H - 6,
                                 "kind": kind, "start": a, "end": b, "speaker": speaker})
    media = clip.get("media_uri") or ""
    local = media and not storage.is_remote(media) and not storage.is_remote(report_dir)
    src = os.path.relpath(media, report_dir) if local else media
    is_video = not media.lower().endswith((".wav", ".flac", ".m4a", ".mp3", ".ogg"))
    ticks = [{"x": LABEL_W + k * (WIDTH - LABEL_W) / 4, "t": start + k * (end - start) / 4} for k in range(5)]
    return {"sample": sample, "clip_id": clip["clip_id"], "start": start, "end": end, "rows": rows, "bars": bars,
            "height": max(len(rows), 1) * ROW_H + 24, "width": WIDTH, "label_w": LABEL_W, "ticks": ticks,
            "src": f"{src}#t={start:.3f},{end:.3f}", "video": is_video}


def pick_timeline_sample(samples: list[dict], clips: dict[str, dict]) -> tuple[dict, dict] | None:
    """The first sample (in task order) whose single clip has both reference and predicted turns."""
    order = {t: i for i, t in enumerate(task_names())}
    for s in sorted(samples, key=lambda s: (order.get(s["task"], 99), s["sample_id"])):
        c = clips.get(s["clip_ids"][0]) if len(s["clip_ids"]) == 1 else None
        if c and c.get("gt_turns") and c.get("pred_turns"):
            return s, c
    return None


def render(results: dict, plots: dict[str, str], meta: dict, predictions: list[dict], samples: list[dict],
           clips: dict[str, dict], report_dir: str) -> str:
    models = list(results["results"])
    tables = [{"model": m, "scores": markdown.model_table(results, m, tablefmt="html"),
               "details": markdown.detail_table(results, m, tablefmt="html")} for m in models]
    picked = pick_timeline_sample(samples, clips)
    return _env().get_template("report.html.j2").render(
        meta=meta, results=results, models=models, tables=tables, plots=plots,
        published=markdown.published_table(tablefmt="html"),
        traces=traces(predictions, {s["sample_id"]: s for s in samples}),
        timeline=timeline(*picked, report_dir) if picked else None,
    )
