"""Evaluation harness: tasks x modes x models over samples, in parallel Ray Data tasks, resumable.

Each work item is one (model, sample, mode). Workers either POST it to the Serve endpoint
(``/v1/amuse/answer``) or run the model in-process with the same runner, then score it locally
(the server never sees gold labels). Finished predictions are written as small Parquet shards in
a cache folder as soon as each batch comes back, keyed by ``eval.runner.prediction_id``: the
model's identity (checkpoint bytes, endpoint + remote model, baseline code; not its name), the
sample, the mode and the prompt version. A rerun reads the shards and only sends what is missing.

Failed predictions (``error`` set) are never written to the cache: a failure is usually transient
(an endpoint down, a timeout), and a cached one would be reported forever. The run that made them
keeps them in memory for its predictions table, and the next run tries them again. Error rows
that older versions cached are ignored on read for the same reason.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from typing import Any

import pyarrow as pa

from infra import storage
from infra.ids import content_id
from infra.schemas import PREDICTION_SCHEMA
from infra.validate import to_table

log = logging.getLogger("amuse.eval.harness")

CLIP_FIELDS = ("clip_id", "media_uri", "audio_uri", "start_s", "end_s")


# --- cache --------------------------------------------------------------------------------------


def read_cache(cache_dir: str, scfg=None) -> dict[str, dict]:
    """prediction_id -> row, from every shard under ``cache_dir``; failed rows are not results."""
    rows: dict[str, dict] = {}
    for uri in storage.list_files(cache_dir, ".parquet", scfg):
        try:
            for r in storage.read_parquet(uri, scfg).to_pylist():
                if r.get("error") is None:
                    rows[r["prediction_id"]] = r
        except Exception as exc:  # a shard cut short by a crash: its items are simply redone
            log.warning("ignoring unreadable cache shard %s: %s", uri, exc)
    return rows


def write_shard(cache_dir: str, rows: list[dict], scfg=None) -> str:
    table = to_table(rows, PREDICTION_SCHEMA)
    uri = storage.join(cache_dir, f"part-{content_id(*sorted(r['prediction_id'] for r in rows))}.parquet")
    storage.write_parquet(table, uri, scfg)
    return uri


# --- work items ---------------------------------------------------------------------------------


def mode_key(model_key: str, mode: str, tools_key: str | None) -> str:
    """The key a prediction in ``mode`` is cached under: in agentic mode the answer also depends on
    what the tools return, so their identity (``tools_key``: tools module + perception config) joins it."""
    return content_id(model_key, tools_key) if mode == "agentic" and tools_key else model_key


def wanted_ids(samples: list[dict], model_keys: dict[str, str], modes: list[str],
               tools_key: str | None = None) -> dict[str, list[str]]:
    """prediction_id -> the model names it is reported under (two names of one identity share it)."""
    from eval.runner import prediction_id

    out: dict[str, list[str]] = {}
    for m, key in model_keys.items():
        for mode in modes:
            for s in samples:
                out.setdefault(prediction_id(mode_key(key, mode, tools_key), s["sample_id"], mode), []).append(m)
    return out


def work_items(samples: list[dict], clips: dict[str, dict], model_keys: dict[str, str], modes: list[str],
               done: set[str], tools_key: str | None = None) -> list[dict]:
    """One item per prediction not in ``done``. ``model_keys``: name -> ``registry.model_identity``."""
    from eval.runner import prediction_id

    items, queued = [], set(done)
    for m, model_key in model_keys.items():
        for mode in modes:
            key = mode_key(model_key, mode, tools_key)
            for s in samples:
                pid = prediction_id(key, s["sample_id"], mode)
                if pid in queued:
                    continue
                queued.add(pid)
                recs = {c: {k: clips[c].get(k) for k in CLIP_FIELDS} for c in s["clip_ids"] if c in clips}
                items.append({"item": json.dumps({"model": m, "model_key": key, "mode": mode, "sample": s, "clips": recs},
                                                 default=str)})
    return items


# --- worker side --------------------------------------------------------------------------------

_ADAPTERS: dict[str, Any] = {}
_TOOLS: dict[str, Any] = {}
_JUDGE: dict[str, Any] = {}


def _in_process(item: dict, settings: dict, sample: dict) -> dict:
    from eval.agent.loop import Limits
    from eval.agent.tools import InProcessTools
    from eval.config import ModelSpec
    from eval.models.registry import build_adapter
    from eval.runner import predict_in_process

    name = item["model"]
    if name not in _ADAPTERS:
        spec = next(s for s in settings["models"] if s["name"] == name)
        _ADAPTERS[name] = build_adapter(ModelSpec(**spec), settings.get("adapter_ctx"))
    if "tools" not in _TOOLS:
        _TOOLS["tools"] = InProcessTools(settings["tools_module"], settings.get("tool_extra"))
    lim = settings["limits"]
    limits = Limits(lim["max_steps"], lim["max_tool_calls"], lim["tool_timeout_s"], time.monotonic() + lim["request_timeout_s"])
    return predict_in_process(_ADAPTERS[name], sample, item["clips"], item["mode"], _TOOLS["tools"], limits, _params(settings),
                              model_key=item["model_key"])


def _params(settings: dict):
    from eval.tasks.kinds import ScoringParams

    return ScoringParams(**settings["scoring"])


def _over_http(item: dict, settings: dict, sample: dict) -> dict:
    import httpx

    from eval.runner import prediction_row

    recs = [item["clips"][c] for c in sample["clip_ids"]]
    body = {
        "model": item["model"], "task": sample["task"], "mode": item["mode"], "question": sample["question"],
        "options": list(sample.get("options") or []), "clip_uris": [r["media_uri"] for r in recs],
        "clip_spans": [[float(r["start_s"]), float(r["end_s"])] for r in recs], "sample_id": sample["sample_id"],
        "target_speaker": sample.get("target_speaker"),
    }
    if item["mode"] == "guided":
        body["cues"] = json.loads(sample.get("cues") or "{}")
    t0 = time.perf_counter()
    try:
        r = httpx.post(settings["base_url"] + "/v1/amuse/answer", json=body, timeout=settings["limits"]["request_timeout_s"] + 30,
                       headers={"Authorization": f"Bearer {settings['api_key']}"})
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")
        out = r.json()
        raw, trace, called, err = out["answer"], out["trace"], out["tools_called"], out["error"]
    except Exception as exc:  # the endpoint's refusal or failure is this prediction's error, scored wrong
        raw, trace, called, err = None, {"plan": None, "act": [], "reflect": None, "answer": None}, [], f"{type(exc).__name__}: {exc}"
    return prediction_row(item["model"], sample, item["mode"], raw, trace, called, err, time.perf_counter() - t0, _params(settings),
                          model_key=item["model_key"])


def _judge(row: dict, sample: dict, settings: dict) -> None:
    j = settings.get("judge") or {}
    if not j.get("base_url") or sample["task"] != "AVDS" or not row["parsed_answer"]:
        return
    if "judge" not in _JUDGE:
        from eval.metrics.judge import Judge

        _JUDGE["judge"] = Judge(j["base_url"], j["model"], j["api_key_env"], j["timeout_s"], j.get("max_attempts", 4))
    from eval.tasks.kinds import references

    score, err = _JUDGE["judge"].rate(row["parsed_answer"], references(sample))
    metrics = json.loads(row["metrics"])
    metrics["judge"] = score
    if err:
        metrics["judge_error"] = err  # why the score is missing, kept with the prediction
    row["metrics"] = json.dumps(metrics)


def eval_batch(batch: dict, settings: dict) -> dict:
    """Ray Data map_batches function: JSON work items in, JSON prediction rows out."""
    out = []
    for text in batch["item"]:
        item = json.loads(text)
        sample = item["sample"]
        fn = _over_http if settings["via_http"] else _in_process
        row = fn(item, settings, sample)
        _judge(row, sample, settings)
        out.append(json.dumps(row))
    return {"row": out}


def settings_for(cfg, base_url: str | None, api_key: str | None, adapter_ctx: dict | None) -> dict:
    from infra.config import to_dict

    s, e = cfg.serve, cfg.eval
    return {
        "via_http": base_url is not None,
        "base_url": base_url,
        "api_key": api_key,
        "models": [asdict(m) for m in e.models],
        "adapter_ctx": adapter_ctx,
        "tools_module": s.tools_module,
        "tool_extra": {"cfg": to_dict(cfg.perception)} if s.tools_module == "perception.tools" else None,
        "limits": {"max_steps": s.max_steps, "max_tool_calls": s.max_tool_calls, "tool_timeout_s": s.tool_timeout_s,
                   "request_timeout_s": s.request_timeout_s},
        "scoring": {"iou_thresholds": list(e.iou_thresholds), "stg_tolerance_s": e.stg_tolerance_s,
                    "bootstrap_samples": e.bootstrap_samples, "seed": cfg.run.seed},
        "judge": {**asdict(e.judge), "max_attempts": e.remote_max_attempts},
    }


def run_items(items: list[dict], settings: dict, cache_dir: str, concurrency: int, num_cpus: float, scfg=None,
              batch_size: int = 2) -> list[dict]:
    """Send ``items`` through Ray Data; write each returned batch's successful rows to the cache at
    once. Returns the failed rows (never cached: the next run retries them)."""
    import ray.data

    failed: list[dict] = []
    if not items:
        return failed
    ds = ray.data.from_items(items).map_batches(
        eval_batch, batch_size=batch_size, fn_kwargs={"settings": settings}, num_cpus=num_cpus,
        compute=ray.data.TaskPoolStrategy(size=concurrency),
    )
    n = 0
    for batch in ds.iter_batches(batch_size=batch_size * max(1, concurrency), batch_format="pyarrow"):
        rows = [json.loads(x) for x in batch.column("row").to_pylist()]
        ok = [r for r in rows if r["error"] is None]
        failed += [r for r in rows if r["error"] is not None]
        if ok:
            write_shard(cache_dir, ok, scfg)
        n += len(rows)
        log.info("evaluated %d/%d (%d failed, to be retried by the next run)", n, len(items), len(failed))
    return failed


def select_rows(cached: dict[str, dict], failed: list[dict], wanted: dict[str, list[str]]) -> list[dict]:
    """This run's predictions: a cached result, else the failure of this run's attempt, once per
    model name (the row's ``model`` is the name it is reported under now, whatever name cached it)."""
    by_id = {r["prediction_id"]: r for r in failed}
    by_id.update(cached)  # a result beats a failure
    return [{**by_id[pid], "model": name} for pid, names in wanted.items() if pid in by_id for name in names]


def predictions_table(rows: list[dict]) -> pa.Table:
    return to_table(sorted(rows, key=lambda r: (r["model"], r["task"], r["mode"], r["sample_id"])), PREDICTION_SCHEMA)
