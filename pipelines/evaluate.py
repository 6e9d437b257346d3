"""`amuse evaluate`: tasks x modes x models on curated samples; predictions, results and a report.

    amuse evaluate --config configs/demo.yaml
    ray job submit --working-dir . -- python pipelines/evaluate.py --config configs/demo.yaml \
        --set eval.models='[{name: tool_only, kind: tool_only}, {name: random, kind: random}]'

With ``eval.via_http`` (default) it starts the Serve app (model + tool deployments, see
``pipelines/serve.py``), sends every (model, sample, mode) through ``POST /v1/amuse/answer`` from
parallel Ray Data tasks, and shuts Serve down at the end. Finished predictions are cached under
``<report_dir>/cache/``, keyed by model identity, sample, mode and prompt version (``eval.harness``);
a rerun only sends what is missing, and what failed (errors are never cached). Writes ``predictions.parquet``,
``results.json`` and ``report.md`` (with PNG plots) to ``eval.report_dir`` (default
``<output_dir>/<run>/eval``).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time

if not __package__:  # run as a script (ray job submit): make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from eval import harness  # noqa: E402
from eval.metrics import text as text_metrics  # noqa: E402
from eval.models.registry import model_identity  # noqa: E402
from eval.report import html, markdown, plots  # noqa: E402
from eval.report.provenance import provenance  # noqa: E402
from eval.report.results import compute  # noqa: E402
from eval.tasks.kinds import ScoringParams  # noqa: E402
from infra import storage  # noqa: E402
from infra.ray_utils import init_ray  # noqa: E402
from pipelines.args import parse_job_args  # noqa: E402
from pipelines.config import AppConfig  # noqa: E402
from pipelines.policies import resolve_policy_paths  # noqa: E402

CLIP_COLUMNS = ["clip_id", "media_uri", "audio_uri", "start_s", "end_s"]
# What the report's perception-quality section compares (pred_* against gt_*).
QUALITY_COLUMNS = ["clip_id", "start_s", "end_s", "gt_turns", "gt_face_tracks", "pred_turns", "pred_transcript",
                   "pred_face_tracks", "pred_active_speaker"]


def curated_uris(cfg: AppConfig, job: str) -> tuple[str, str]:
    """(samples.parquet, clips folder) of the run, as ``eval`` names them; a missing one stops ``job``."""
    e = cfg.eval
    samples_uri = e.samples_uri or cfg.output_uri("samples.parquet")
    clips_uri = e.clips_uri or cfg.output_uri("clips")
    for name, uri in (("eval.samples_uri", samples_uri), ("eval.clips_uri", clips_uri)):
        if not storage.exists(uri, cfg.storage):
            raise SystemExit(f"{job}: {uri} not found ({name}); run `amuse curate` first or set {name}")
    return samples_uri, clips_uri


def load_inputs(cfg: AppConfig) -> tuple[list[dict], dict[str, dict]]:
    e = cfg.eval
    samples_uri, clips_uri = curated_uris(cfg, "evaluate")
    samples = [s for s in storage.read_parquet(samples_uri, cfg.storage).to_pylist()
               if (e.split == "all" or s["split"] == e.split) and s["task"] in e.tasks]
    if e.max_samples_per_task is not None:
        kept, per = [], {}
        for s in sorted(samples, key=lambda s: s["sample_id"]):
            if per.get(s["task"], 0) < e.max_samples_per_task:
                kept.append(s)
                per[s["task"]] = per.get(s["task"], 0) + 1
        samples = kept
    table = storage.read_parquet(clips_uri, cfg.storage)
    clips = {r["clip_id"]: r for r in table.select([c for c in CLIP_COLUMNS if c in table.column_names]).to_pylist()}
    for r in clips.values():  # relative media paths mean "from here": Serve replicas run elsewhere
        for key in ("media_uri", "audio_uri"):
            if r.get(key) and not storage.is_remote(r[key]) and not os.path.isabs(r[key]):
                r[key] = os.path.abspath(r[key])
    return samples, clips


def _serve_media_roots(cfg: AppConfig) -> None:
    """Serve reads media only under allowed roots; the corpus root is the one this run needs."""
    roots = list(cfg.serve.allowed_media_roots)
    # the corpus, and the run's own media folder (curation writes stitched clips there)
    for root in (cfg.run.corpus_dir, cfg.output_uri("media")):
        if root not in roots:
            roots.append(root)
    cfg.serve.allowed_media_roots = roots


def tools_identity(cfg: AppConfig) -> str:
    """What agentic answers depend on besides the model: the tools module and, for the perception
    tools, every perception key that changes their output (``pipelines.curation.manifest``)."""
    from infra.ids import content_id
    from pipelines.curation.manifest import perception_outputs_config

    perception = perception_outputs_config(cfg) if cfg.serve.tools_module == "perception.tools" else None
    return content_id(cfg.serve.tools_module, perception)


def run(cfg: AppConfig) -> dict[str, str]:
    from eval.serving import app as serve_app

    init_ray(cfg.ray, env=cfg.storage.env())
    e = cfg.eval
    report_dir = e.report_dir or cfg.output_uri("eval")
    cache_dir = storage.join(report_dir, "cache")
    samples, clips = load_inputs(cfg)
    if any(s["task"] == "AVDS" for s in samples):
        text_metrics.prewarm_meteor()  # the JVM loads its tables while the predictions run
    print(f"evaluate: {len(samples)} {e.split} samples x {len(e.modes)} modes x {len(e.models)} models")
    resolve_policy_paths(cfg)  # before identities and adapters: eval does not build RAFT's base model
    adapter_ctx = serve_app.adapter_context(cfg)
    # Predictions are keyed by what the answers depend on (checkpoint bytes, endpoint, baseline code),
    # computed once here, so a retrained model under the same name is evaluated afresh.
    model_keys = {m.name: model_identity(m, adapter_ctx) for m in e.models}
    tools_key = tools_identity(cfg)
    cached = harness.read_cache(cache_dir, cfg.storage)
    items = harness.work_items(samples, clips, model_keys, e.modes, set(cached), tools_key)
    print(f"evaluate: {len(cached)} predictions cached, {len(items)} to run")
    t0 = time.time()
    started = False
    failed: list[dict] = []
    if items:
        base_url = api_key = None
        if e.via_http:
            if not (cfg.serve.api_key or os.environ.get(cfg.serve.api_key_env)):
                cfg.serve.api_key = secrets.token_urlsafe(24)  # a key for this run only, never written out
            _serve_media_roots(cfg)
            base_url = serve_app.start(cfg)
            started = True
            api_key = serve_app.resolve_api_key(cfg.serve)
            print(f"evaluate: Serve app up at {base_url}")
        try:
            settings = harness.settings_for(cfg, base_url, api_key, adapter_ctx)
            failed = harness.run_items(items, settings, cache_dir, e.concurrency, e.num_cpus_per_task, cfg.storage)
        finally:
            if started:
                serve_app.stop(cfg)
                print("evaluate: Serve app shut down")
    print(f"evaluate: ran {len(items)} predictions in {time.time() - t0:.1f} s" +
          (f"; {len(failed)} failed (kept in predictions.parquet with their error, retried by the next run)" if failed else ""))
    wanted = harness.wanted_ids(samples, model_keys, e.modes, tools_key)
    rows = harness.select_rows(harness.read_cache(cache_dir, cfg.storage), failed, wanted)
    return write_outputs(cfg, samples, report_dir, rows, path="HTTP (Ray Serve)" if e.via_http else "in-process",
                         model_keys=model_keys)


def evaluated_clips(cfg: AppConfig, samples: list[dict]) -> dict[str, dict]:
    """The clip records behind the evaluated samples (labels, perception and media), by clip id."""
    clips_uri = cfg.eval.clips_uri or cfg.output_uri("clips")
    if not storage.exists(clips_uri, cfg.storage):
        return {}
    table = storage.read_parquet(clips_uri, cfg.storage)
    wanted = {c for s in samples for c in s["clip_ids"]}
    columns = [c for c in [*QUALITY_COLUMNS, "media_uri", "audio_uri"] if c in table.column_names]
    return {r["clip_id"]: r for r in table.select(columns).to_pylist() if r["clip_id"] in wanted}


def perception_quality(cfg: AppConfig, clips: list[dict]) -> dict | None:
    """ASD mAP, DER and WER of the clips behind the evaluated samples (``eval.metrics.perception_quality``)."""
    from eval.metrics.perception_quality import summarize

    return summarize(clips, n_boot=min(cfg.eval.bootstrap_samples, 1000), seed=cfg.run.seed) if clips else None


def write_outputs(cfg: AppConfig, samples: list[dict], report_dir: str, rows: list[dict], path: str,
                  model_keys: dict[str, str] | None = None) -> dict[str, str]:
    e = cfg.eval
    preds_uri = storage.join(report_dir, "predictions.parquet")
    storage.write_parquet(harness.predictions_table(rows), preds_uri, cfg.storage)
    by_id = {s["sample_id"]: s for s in samples}
    params = ScoringParams(e.iou_thresholds, e.stg_tolerance_s, e.bootstrap_samples, cfg.run.seed)
    results = compute(rows, by_id, params)
    clips = evaluated_clips(cfg, samples)
    results["perception"] = perception_quality(cfg, list(clips.values()))
    results["provenance"] = provenance(cfg, samples, model_keys or {})
    results_uri = storage.join(report_dir, "results.json")
    storage.write_bytes(results_uri, json.dumps(results, indent=1).encode(), cfg.storage)
    figures = {f"{m}: score per task by mode": (f"task_mode_{m}.png", plots.task_by_mode(results, m)) for m in results["results"]}
    figures.update({
        "Score vs overlap bucket": ("overlap.png", plots.by_stratum(results, "overlap_bucket", "Score vs overlap bucket")),
        "Score vs clip length": ("length.png", plots.by_stratum(results, "length_bucket", "Score vs clip length")),
        "Score vs visible speakers": ("visible.png", plots.by_stratum(results, "num_visible", "Score vs visible speakers",
                                                                         order=lambda b: int(b) if b.isdigit() else 99)),
        "Tool-decision correctness (agentic)": ("tool_decision.png", plots.tool_decision(results)),
        "Guided-to-agentic gap per task": ("gap.png", plots.guided_agentic_gap(results)),
    })
    links = {}
    for caption, (name, png) in figures.items():
        storage.write_bytes(storage.join(report_dir, "plots", name), png, cfg.storage)
        links[caption] = f"plots/{name}"
    meta = {"run": cfg.run.name, "split": e.split, "n_samples": len(samples), "modes": e.modes, "path": path,
            "bootstrap_samples": e.bootstrap_samples, "stg_tolerance_s": e.stg_tolerance_s}
    report_uri = storage.join(report_dir, "report.md")
    storage.write_bytes(report_uri, markdown.write(results, links, meta).encode(), cfg.storage)
    html_uri = storage.join(report_dir, "report.html")
    storage.write_bytes(html_uri, html.render(results, links, meta, rows, samples, clips, report_dir).encode(), cfg.storage)
    print(f"evaluate: report at {report_uri} and {html_uri}")
    return {"predictions": preds_uri, "results": results_uri, "eval report": report_uri, "html report": html_uri}


def main(argv: list[str] | None = None) -> int:
    _, cfg = parse_job_args("amuse evaluate", "Evaluate models on AMUSE tasks in zero-shot, guided and agentic modes.", argv)
    for name, uri in run(cfg).items():
        print(f"{name:<20} {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
