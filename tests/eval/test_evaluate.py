"""`amuse evaluate` end to end on samples built by the real task builders from schema-valid clips."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from serve_fixtures import API_KEY, start_ray, write_wav
from synthetic import corpus

pytestmark = pytest.mark.slow


def _inputs(tmp: Path) -> tuple[str, str, str]:
    from eval.tasks.build import build_all
    from eval.tasks.config import TasksConfig
    from infra import storage
    from infra.schemas import CLIP_SCHEMA, SAMPLE_SCHEMA
    from infra.validate import to_table

    media = tmp / "media"
    media.mkdir()
    wav = write_wav(media / "ep.wav", 1.0)
    clips = corpus(wav)
    res = build_all(clips, TasksConfig(test_fraction=0.5), seed=0)
    samples_uri, clips_uri = str(tmp / "samples.parquet"), str(tmp / "clips" / "part-0.parquet")
    storage.write_parquet(to_table(res.rows, SAMPLE_SCHEMA), samples_uri)
    storage.write_parquet(pa.Table.from_pylist(clips, schema=CLIP_SCHEMA), clips_uri)
    return samples_uri, str(tmp / "clips"), str(media)


def _cfg(tmp: Path, samples_uri: str, clips_uri: str, media: str, via_http: bool, extra=()):
    from pipelines.config import load_app_config

    return load_app_config(None, [
        f"run.output_dir={tmp / 'out'}", "run.name=t", f"eval.samples_uri={samples_uri}", f"eval.clips_uri={clips_uri}",
        "eval.models=[{name: tool_only, kind: tool_only}, {name: random, kind: random}]",
        f"eval.via_http={str(via_http).lower()}", "eval.bootstrap_samples=200", "serve.tools_module=fake_tools",
        f"serve.allowed_media_roots=[{media}]", f"serve.api_key={API_KEY}", "serve.port=0", *extra,
    ])


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    start_ray()
    yield
    ray.shutdown()


def test_evaluate_in_process_writes_report_resumes_and_baselines_differ(tmp_path, ray_cluster):
    from pipelines import evaluate

    samples_uri, clips_uri, media = _inputs(tmp_path)
    cfg = _cfg(tmp_path, samples_uri, clips_uri, media, via_http=False)
    out = evaluate.run(cfg)
    preds = pa.parquet.read_table(out["predictions"]).to_pylist()
    n_samples = len([s for s in pa.parquet.read_table(samples_uri).to_pylist() if s["split"] == "test"])
    assert len(preds) == n_samples * 3 * 2
    assert {p["mode"] for p in preds} == {"zero_shot", "guided", "agentic"}
    assert all(p["tool_decision"] is not None for p in preds if p["mode"] == "agentic")
    results = json.loads(Path(out["results"]).read_text())
    prov = results["provenance"]
    import subprocess

    from eval.models.registry import model_identity
    from eval.report.provenance import sample_set_hash

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True).stdout.strip()
    assert prov["git"]["commit"] == head
    assert prov["config"]["serve"]["api_key"] == "<redacted>" and prov["config"]["eval"]["samples_uri"] == samples_uri
    assert prov["packages"]["torch"] and prov["packages"]["ray"]
    assert prov["models"]["random"]["identity"] == model_identity(cfg.eval.models[1], {})
    tested = [s for s in pa.parquet.read_table(samples_uri).to_pylist() if s["split"] == "test"]
    assert prov["samples"] == {"n": len(tested), "hash": sample_set_hash(tested)}
    report = Path(out["eval report"]).read_text()
    for needle in ["## tool_only: task x mode", "## random: task x mode", "Score vs overlap bucket", "Score vs clip length",
                   "Score vs visible speakers", "Tool-decision correctness", "Guided-to-agentic gap", "Published, not measured",
                   "Sanity: tool-only baseline minus random", "Perception quality of the evaluated clips", "ASD mAP (AVA"]:
        assert needle in report, needle
    for png in ["overlap.png", "length.png", "visible.png", "tool_decision.png", "gap.png", "task_mode_tool_only.png"]:
        assert (Path(out["eval report"]).parent / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    # every headline figure carries a CI
    r = results["results"]["tool_only"]["AVSA"]["guided"]["metrics"]["accuracy"]
    assert r["low"] <= r["value"] <= r["high"] and r["n"] > 0
    assert "nrefs:1" in results["bleu_signature"]
    # guided cues carry signal for the tool-only baseline; the random baseline has none. (AVSA's
    # cues hold one whole-clip mean score per face, which cannot say who spoke in a span, so AVSA
    # is checked in agentic mode on the corpus, where active_speaker returns the time series.)
    for task in ("SRID", "STG"):
        h = results["results"]["tool_only"][task]["guided"]
        rnd = results["results"]["random"][task]["guided"]
        assert h["metrics"][h["headline"]]["value"] > rnd["metrics"][rnd["headline"]]["value"], task
    # the baselines' margin is paired over the same samples, with a CI
    m = results["margins"]["tool_only-random"]["SRID"]["guided"]
    assert m["low"] <= m["value"] <= m["high"] and m["value"] > 0
    # perception quality of the clips behind the samples: the synthetic ASD scores follow the labels exactly
    q = results["perception"]
    assert q["ASD mAP"]["value"] == pytest.approx(1.0) and q["DER"]["n"] > 0 and q["WER"]["value"] < 0.05
    # a rerun resumes from the cache: nothing is recomputed, same predictions
    again = evaluate.run(cfg)
    assert pa.parquet.read_table(again["predictions"]).to_pylist() == preds


def test_evaluate_through_http_endpoint(tmp_path, ray_cluster):
    import ray

    from pipelines import evaluate

    samples_uri, clips_uri, media = _inputs(tmp_path)
    cfg = _cfg(tmp_path, samples_uri, clips_uri, media, via_http=True,
               extra=["eval.max_samples_per_task=2", "eval.tasks=[AVSA, STG, AVDS]"])
    out = evaluate.run(cfg)
    preds = pa.parquet.read_table(out["predictions"]).to_pylist()
    assert len(preds) == 3 * 2 * 3 * 2
    assert not [p for p in preds if p["error"]], [p["error"] for p in preds if p["error"]][:3]
    agentic = [p for p in preds if p["mode"] == "agentic" and p["model"] == "tool_only"]
    assert all(json.loads(p["trace"])["act"] for p in agentic)  # tools were called through Serve
    # Serve was shut down after the run (its controller actor is gone)
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    assert not [n for n in names if "SERVE_CONTROLLER" in n], names


def test_failed_predictions_are_not_cached_and_a_rerun_retries_them(tmp_path, ray_cluster):
    from fake_openai import fake_openai

    from eval import harness
    from pipelines import evaluate

    samples_uri, clips_uri, media = _inputs(tmp_path)
    with fake_openai(answer="A") as srv:
        cfg = _cfg(tmp_path, samples_uri, clips_uri, media, via_http=False, extra=[
            f"eval.models=[{{name: ext, kind: openai, base_url: '{srv.url}', remote_model: m}}]", "eval.tasks=[AVSA]",
            "eval.modes=[zero_shot]", "eval.max_samples_per_task=2", "eval.remote_max_attempts=1"])
        srv.script = [400] * 100  # the endpoint refuses everything on the first run
        out = evaluate.run(cfg)
        preds = pa.parquet.read_table(out["predictions"]).to_pylist()
        assert len(preds) == 2 and all("BadRequestError" in p["error"] for p in preds)  # recorded in the table...
        assert harness.read_cache(str(Path(out["predictions"]).parent / "cache")) == {}  # ...never in the cache
        first_calls = len(srv.requests)
        srv.script = []  # the endpoint is back
        again = pa.parquet.read_table(evaluate.run(cfg)["predictions"]).to_pylist()
        assert len(srv.requests) == first_calls + 2  # both retried
        assert [p["error"] for p in again] == [None, None] and all(p["raw_output"] == "A" for p in again)
        assert {p["prediction_id"] for p in again} == {p["prediction_id"] for p in preds}
        evaluate.run(cfg)  # now cached: nothing is sent
        assert len(srv.requests) == first_calls + 2


def test_git_commit_outside_a_checkout_is_unknown(tmp_path):
    from eval.report.provenance import git_commit, redact

    assert git_commit(tmp_path) == {"commit": "unknown", "dirty": None}
    assert redact({"storage": {"key": "AK", "secret": None}, "serve": {"api_key_env": "X", "api_key": "s"}}) == \
        {"storage": {"key": "<redacted>", "secret": None}, "serve": {"api_key_env": "X", "api_key": "<redacted>"}}
