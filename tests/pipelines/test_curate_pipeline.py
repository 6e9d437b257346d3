"""The curation pipeline end to end on a real local Ray cluster: quarantine, resume after SIGKILL, s3://.

Perception runs the real ``vad`` stage (cheap); the other stages are switched off with
``curate.stages`` to keep the suite within its time budget (the demo and the benchmark run all).
The default fused layout (decode, perception and write in each actor) runs in the quarantine and
resume tests; the s3:// test runs the per-stage layout (decode task, one pool per stage, write task).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from corpus_fixtures import make_video, write_ami, write_ava, write_friends, write_youtube

from infra import storage
from infra.schemas import CLIP_SCHEMA, QUARANTINE_SCHEMA, SAMPLE_SCHEMA
from infra.validate import validate_table
from pipelines.config import load_app_config

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def app_cfg(corpus: str, out: str, *extra: str):
    return load_app_config(REPO / "configs" / "demo.yaml", [
        f"run.corpus_dir={corpus}", f"run.output_dir={out}", "run.name=t", "ray.address=local", "ray.num_cpus=2",
        "curate.stages=[vad]", "curate.progress_bars=false", *extra])


@pytest.fixture
def ray_local():
    import ray

    yield
    ray.shutdown()


def read_rows(uri: str, schema) -> list[dict]:
    rows = []
    for f in storage.list_files(uri, ".parquet"):
        if not f.rsplit("/", 1)[-1].startswith("."):
            fs, path = storage.arrow_filesystem(f)
            import pyarrow.parquet as pq

            rows += pq.read_table(path, filesystem=fs, schema=schema).to_pylist()
    return rows


def write_truncated_youtube(root: Path, vid="truncVideo1", duration=30.0) -> None:
    """A faststart mp4 whose header promises 30 s but whose data stops half way, with a sidecar."""
    base = root / "youtube"
    path = base / f"{vid}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    full = base / "full.tmp"
    make_video(full, duration)
    with av.open(str(full)) as src, av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for pkt in src.demux():
            if pkt.dts is not None:
                pkt.stream = streams[pkt.stream.index]
                dst.mux(pkt)
    full.unlink()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    import json

    turns = [{"start": 1.0 + 5 * k, "end": 5.0 + 5 * k, "speaker": "ab"[k % 2], "text": "hi"} for k in range(5)]
    (base / f"{vid}.json").write_text(json.dumps({"video_id": vid, "turns": turns}))


def test_quarantine_corrupt_and_truncated_media_run_goes_on(tmp_path, ray_local):
    from pipelines.curate import run

    corpus = tmp_path / "corpus"
    write_youtube(corpus)
    write_truncated_youtube(corpus)
    write_ava(corpus)
    write_ava(corpus, vid="corruptAva01")
    (corpus / "ava/videos/corruptAva01.mp4").write_bytes(os.urandom(20000))  # labels fine, media garbage
    (corpus / "youtube/garbage0001.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000))
    # The default fused layout: decode-verify runs in the actors, which quarantine before any stage.
    cfg = app_cfg(str(corpus), str(tmp_path / "out"), "curate.sources=[ava,youtube]")
    outputs = run(cfg)

    q = storage.read_parquet(outputs["quarantine"])
    assert validate_table(q, QUARANTINE_SCHEMA) == q.num_rows
    rows = {r["uri"].rsplit("/", 1)[-1]: r for r in q.to_pylist()}
    assert set(rows) == {"corruptAva01.mp4", "truncVideo1.mp4", "garbage0001.mp4"}  # one row per bad file
    # Cut mid-packet, the data ends in garbage or early: either way the reason names the file and why.
    trunc = rows["truncVideo1.mp4"]["reason"]
    assert "truncVideo1.mp4" in trunc and ("truncated" in trunc or "Invalid data" in trunc), trunc
    assert rows["corruptAva01.mp4"]["stage"] == "decode" and "corruptAva01.mp4" in rows["corruptAva01.mp4"]["reason"]

    clips = read_rows(outputs["clips"], CLIP_SCHEMA)
    import pyarrow as pa

    assert validate_table(pa.Table.from_pylist(clips, schema=CLIP_SCHEMA), CLIP_SCHEMA) == len(clips)
    assert {c["source_video_id"] for c in clips} == {"dQw4w9WgXcQ", "abcDEF12345"}
    assert all(c["pred_speech"] is not None and c["errors"] == [] for c in clips)  # the vad actors ran
    assert all(c["pred_face_tracks"] is None for c in clips)  # switched-off stages leave pred_* null
    assert (Path(outputs["clips"]) / "ava").is_dir() and (Path(outputs["clips"]) / "youtube").is_dir()
    samples = storage.read_parquet(outputs["samples"])
    assert validate_table(samples, SAMPLE_SCHEMA) == samples.num_rows > 0
    # Resuming this run with another VAD backend stops before any work, naming the key; the clips stay.
    from infra.config import ConfigError

    with pytest.raises(ConfigError, match="perception.vad: silero -> pyannote"):
        run(app_cfg(str(corpus), str(tmp_path / "out"), "curate.sources=[ava,youtube]", "perception.vad=pyannote"))
    assert len(read_rows(outputs["clips"], CLIP_SCHEMA)) == len(clips)


def _curate_cmd(corpus: Path, out: Path) -> list[str]:
    sets = [f"run.corpus_dir={corpus}", f"run.output_dir={out}", "run.name=t", "ray.address=local",
            "ray.num_cpus=2", "curate.stages=[vad]", "curate.records_per_file=1", "curate.progress_bars=false"]
    return [sys.executable, str(REPO / "pipelines" / "curate.py"), *[a for s in sets for a in ("--set", s)]]


def _run_to_end(corpus: Path, out: Path) -> None:
    proc = subprocess.run(_curate_cmd(corpus, out), capture_output=True, text=True, timeout=400, cwd=REPO,
                          start_new_session=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    corpus = tmp_path / "corpus"
    write_ami(corpus, duration=70.0, video=False)
    write_youtube(corpus, duration=40.0)
    write_friends(corpus, n_turns=8)
    ref_out, killed_out = tmp_path / "ref", tmp_path / "killed"
    _run_to_end(corpus, ref_out)

    # Kill the whole run (driver and its Ray processes) with SIGKILL once some clips are on disk.
    proc = subprocess.Popen(_curate_cmd(corpus, killed_out), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    clips_dir = killed_out / "t" / "clips"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if len([p for p in clips_dir.rglob("part-*.parquet")]) >= 2:
                break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    partial = {r["clip_id"] for r in read_rows(str(clips_dir), CLIP_SCHEMA)}
    reference = read_rows(str(ref_out / "t" / "clips"), CLIP_SCHEMA)
    assert 2 <= len(partial) < len(reference), "the kill did not land midway"
    # What a kill inside the stitching leaves (whether or not this kill landed there): a partial mp4.
    stale = killed_out / "t" / "media" / "friends_mmc" / "s01e03" / ".assemble-killed"
    stale.mkdir(parents=True, exist_ok=True)
    (stale / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom")

    _run_to_end(corpus, killed_out)
    assert not list(killed_out.rglob(".assemble-*"))  # the rerun swept the killed run's build folders
    resumed = read_rows(str(clips_dir), CLIP_SCHEMA)
    assert len({r["clip_id"] for r in resumed}) == len(resumed)  # nothing duplicated
    # Stitched Friends-MMC media live under each run's own output folder; everything else is identical.
    def norm(rows, out):
        rows = [{**r, "media_uri": r["media_uri"].replace(str(out), "<out>")} for r in rows]
        return sorted(rows, key=lambda r: r["clip_id"])

    assert norm(resumed, killed_out) == norm(reference, ref_out)
    for name in ("samples.parquet", "quarantine.parquet"):
        a = storage.read_parquet(str(ref_out / "t" / name)).to_pylist()
        b = storage.read_parquet(str(killed_out / "t" / name)).to_pylist()
        assert a == b


def test_s3_input_and_output(tmp_path, s3_bucket, ray_local):
    from pipelines.curate import run

    corpus = tmp_path / "corpus"
    write_ami(corpus, video=False)
    write_friends(corpus, n_turns=6)
    write_youtube(corpus)
    for path in corpus.rglob("*"):
        if path.is_file():
            storage.write_bytes(f"{s3_bucket}/corpus/{path.relative_to(corpus)}", path.read_bytes())
    cfg = app_cfg(f"{s3_bucket}/corpus", f"{s3_bucket}/out", "curate.sources=[ami,friends_mmc,youtube]",
                  "curate.fuse_stages=false")
    outputs = run(cfg)
    assert all(uri.startswith(s3_bucket) for uri in outputs.values())
    clips = read_rows(outputs["clips"], CLIP_SCHEMA)
    assert {c["source"] for c in clips} == {"ami", "friends_mmc", "youtube"}
    assert all(c["media_uri"].startswith(s3_bucket) for c in clips)
    assert any(c["media_uri"].startswith(f"{s3_bucket}/out/t/media/friends_mmc/") for c in clips)  # stitched on S3
    assert all(c["pred_speech"] is not None for c in clips)
    samples = storage.read_parquet(outputs["samples"])
    assert validate_table(samples, SAMPLE_SCHEMA) == samples.num_rows > 0
    assert storage.read_parquet(outputs["quarantine"]).num_rows == 0
    # A rerun against the same bucket resumes: everything is already there.
    import json

    run(cfg)
    summary = json.loads(storage.read_bytes(outputs["curation summary"]))
    assert summary["clips_skipped"] == len(clips) and summary["clips_written"] == 0
