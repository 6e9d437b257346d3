"""Curation pieces that need no Ray cluster: config, actor sizing, stitching, records, relative roots."""

from __future__ import annotations

import json

import pytest
from corpus_fixtures import make_video, write_ami_with_loose_turns, write_voxceleb2

from infra.config import ConfigError
from infra.media import probe
from pipelines.config import REPO_ROOT, load_app_config
from pipelines.curation.assemble import concat_media
from pipelines.curation.pipeline import actor_resources, fused_actors, selected_stages, work_order
from pipelines.curation.records import clip_record, conform
from pipelines.sources import ADAPTERS, ClipCut, ClipRef


def test_demo_config_has_a_documented_curate_section():
    cfg = load_app_config(REPO_ROOT / "configs" / "demo.yaml")
    assert cfg.curate.min_clip_s == 10.0 and cfg.curate.max_clip_s == 50.0 and cfg.curate.resume
    with pytest.raises(ConfigError, match="curate.sources"):
        load_app_config(None, ["curate.sources=[netflix]"])
    with pytest.raises(ConfigError, match="min_clip_s"):
        load_app_config(None, ["curate.min_clip_s=60"])


def test_stage_selection_follows_perception_order():
    cfg = load_app_config(None, ["curate.stages=[faces,vad]"])
    assert selected_stages(cfg) == ["vad", "faces"]
    assert selected_stages(load_app_config(None, [])) == ["vad", "diarization", "asr", "faces", "active_speaker"]
    with pytest.raises(ValueError, match="unknown stages"):
        selected_stages(load_app_config(None, ["curate.stages=[lipread]"]))


def test_actor_cpu_reservations_leave_room_for_tasks():
    """Five pools at 0.5 CPU would reserve 2.5 of 2 CPUs and starve Ray Data's tasks (PLATFORM)."""
    cfg = load_app_config(None, [])
    res = actor_resources(cfg, selected_stages(cfg), cluster_cpus=2.0)
    total = sum(r["num_cpus"] * r["concurrency"] for r in res.values())
    assert total <= 2.0 - cfg.curate.cpu_reserve + 1e-9
    small = actor_resources(cfg, ["vad"], cluster_cpus=2.0)
    assert small["vad"]["num_cpus"] == 0.5  # untouched when it fits


def test_stitched_media_follows_the_labels_timeline(tmp_path):
    parts = [(str(make_video(tmp_path / f"p{i}.mp4", d, size=(64, 36))), d) for i, d in enumerate((2.0, 3.5, 1.5))]
    out = tmp_path / "media" / "clip.mp4"
    concat_media(parts, str(out))
    info = probe(str(out))
    assert info.ok and info.has_video and info.has_audio
    assert info.duration_s == pytest.approx(7.0, abs=0.15)
    assert not list(out.parent.glob(".assemble-*"))  # the temporary build dir is gone


def test_clip_record_takes_labels_from_the_reference_and_preds_from_perception():
    ref = ClipRef(source="ami", source_video_id="m", scene_index=0, media_uri="/x.wav", media_fingerprint="f",
                  start_s=1.0, end_s=12.0, gt_turns=[{"start": 1.0, "end": 3.0, "speaker": "A", "text": None}])
    row = ref.to_row()
    pipeline_row = {"clip_id": row["clip_id"], "source": "ami", "media_uri": "/x.wav", "audio_uri": float("nan"),
                    "start_s": 1.0, "end_s": 12.0, "ref_json": json.dumps(row), "width": float("nan"),
                    "height": float("nan"), "fps": 0.0, "sample_rate": 16000,
                    "pred_speech": [{"start": 1.2, "end": 2.9}], "pred_overlap_ratio": float("nan"),
                    "gt_turns": [{"start": 0, "end": 99, "speaker": "forged", "text": None}],
                    "errors": [{"stage": "asr", "message": "boom"}]}
    rec = clip_record(pipeline_row)
    # A pred-side column named gt_* is ignored; cut marks the reference does not give are null.
    assert rec["gt_turns"] == [{**t, "cut_start": None, "cut_end": None} for t in row["gt_turns"]]
    assert rec["audio_uri"] is None and rec["width"] is None and rec["pred_overlap_ratio"] is None
    assert rec["pred_speech"] == [{"start": 1.2, "end": 2.9}] and rec["errors"][0]["stage"] == "asr"
    import numpy as np
    import pyarrow as pa

    assert conform(np.array([1, 2]), pa.list_(pa.int32())) == [1, 2]
    assert conform({"start": 1.0, "end": 2.0, "extra": 1}, pa.struct([("start", pa.float64()), ("end", pa.float64())])) \
        == {"start": 1.0, "end": 2.0}


def test_relative_roots_give_absolute_media_uris(tmp_path, monkeypatch):
    write_voxceleb2(tmp_path)
    monkeypatch.chdir(tmp_path)
    refs = [r for r in ADAPTERS["voxceleb2"]("voxceleb2", ClipCut()).scan() if isinstance(r, ClipRef)]
    assert refs and all(r.media_uri.startswith(str(tmp_path)) for r in refs)
    assert all(r.audio_uri is None or r.audio_uri.startswith(str(tmp_path)) for r in refs)


def test_work_order_puts_the_most_work_first():
    """Video clips cost about 2.5x audio-only ones per second (faces): a 40 s wav goes after a 20 s mp4."""
    def ref(uri, dur, cid):
        return ClipRef(source="ami", source_video_id="m", scene_index=0, media_uri=uri, media_fingerprint=cid,
                       start_s=0.0, end_s=dur)

    refs = [ref("/a.wav", 40.0, "w40"), ref("/v.mp4", 20.0, "v20"), ref("/v.mp4", 12.0, "v12"), ref("/a.wav", 60.0, "w60")]
    all_stages = selected_stages(load_app_config(None, []))
    assert [r.media_fingerprint for r in work_order(refs, all_stages)] == ["w60", "v20", "w40", "v12"]
    # Without the face stages a clip's cost is its length.
    assert [r.media_fingerprint for r in work_order(refs, ["vad", "asr"])] == ["w60", "w40", "v20", "v12"]


def test_fused_pool_defaults_to_one_actor_per_cpu():
    cfg = load_app_config(None, [])
    assert cfg.curate.fuse_stages and cfg.curate.fused_actors is None
    assert fused_actors(cfg, 2.0) == 2 and fused_actors(cfg, 0.5) == 1
    assert fused_actors(load_app_config(None, ["curate.fused_actors=3"]), 2.0) == 3


def test_summary_separates_actor_start_up_from_warm_throughput():
    from pipelines.curation.summary import RunSummary

    rows = [{"actor_pid": 1, "actor_ready_at": 105.0, "actor_load_s": 4.0, "duration_s": 30.0, "status": "ok"},
            {"actor_pid": 2, "actor_ready_at": 106.0, "actor_load_s": 5.0, "duration_s": 20.0, "status": "ok"},
            {"actor_pid": 2, "actor_ready_at": 106.0, "actor_load_s": 5.0, "duration_s": 10.0, "status": "ok"}]
    s = RunSummary()
    s.set_actor_timing(rows, t_exec=100.0, t_end=126.0)
    assert (s.actors, s.actor_start_s, s.actor_load_s, s.warm_wall_s) == (2, 6.0, 4.5, 20.0)
    assert s.warm_clip_s_per_wall_s == pytest.approx(3.0)
    per_stage = RunSummary()
    per_stage.set_actor_timing([{**rows[0], "actor_pid": None, "actor_ready_at": None}], 100.0, 126.0)
    assert per_stage.warm_wall_s is None and "actors:" not in per_stage.table()


def test_summary_throughput_is_measured_from_the_pool_start_not_a_restarted_actor():
    """Actor 2 died and Ray restarted it (pid 3, ready at 120): the warm wall still starts when the
    pool of 2 was ready (106), so 60 media s over 20 s is 3.0, not 60 / 6 = 10."""
    from pipelines.curation.summary import RunSummary

    rows = [{"actor_pid": 1, "actor_ready_at": 105.0, "actor_load_s": 4.0, "duration_s": 30.0, "status": "ok"},
            {"actor_pid": 2, "actor_ready_at": 106.0, "actor_load_s": 5.0, "duration_s": 20.0, "status": "ok"},
            {"actor_pid": 3, "actor_ready_at": 120.0, "actor_load_s": 6.0, "duration_s": 10.0, "status": "ok"}]
    s = RunSummary()
    s.set_actor_timing(rows, t_exec=100.0, t_end=126.0, pool_size=2)
    assert (s.actors, s.actor_restarts, s.actor_start_s, s.warm_wall_s) == (2, 1, 6.0, 20.0)
    assert s.warm_clip_s_per_wall_s == pytest.approx(3.0)
    assert "1 actor restart(s)" in s.table()


def test_summary_counts_labelled_turns_in_no_clip_per_source(tmp_path):
    from pipelines.curation.pipeline import scan_summary
    from pipelines.curation.refs import scan_sources

    write_ami_with_loose_turns(tmp_path)
    cfg = load_app_config(None, ["curate.sources=[ami]"])
    cfg.curate.source_dirs = {"ami": str(tmp_path / "ami")}
    scan = scan_sources(cfg)
    summary = scan_summary(scan, scan.refs[1:])
    assert (summary.clips_total, summary.clips_skipped) == (4, 1)
    assert summary.turns_left_out["ami"] == pytest.approx({"turns": 3, "turn_s": 7.0, "cut_turns": 1, "cut_s": 1.0})
    assert json.loads(summary.to_json())["turns_left_out"]["ami"]["turns"] == 3
    assert "labelled turns in no clip: ami 3 (7.0 s), 1 cut at a clip edge (1.0 s outside)" in summary.table()

def test_set_threads_pins_every_pool_to_the_configured_count():
    import os

    from threadpoolctl import threadpool_info

    from perception.actors import as_config, set_threads

    applied = set_threads(as_config({"torch_threads": 1}))
    assert applied == {"torch": 1, "torch_interop": applied["torch_interop"], "opencv": 1, "blas_openmp": 1}
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert all(p["num_threads"] == 1 for p in threadpool_info())


def test_warm_up_clip_exercises_every_model(tmp_path):
    """The synthetic warm-up clip has speech claimed and a real face, so every stage runs its model."""
    from perception.actors import STAGE_ORDER, _synthetic_clip, apply_stage, as_config, get_stage

    cfg = as_config(None)
    row = _synthetic_clip(str(tmp_path / "w.mp4"))
    for name in STAGE_ORDER:
        row.update(apply_stage(get_stage(name, cfg), row))
        if name == "vad":
            row["pred_speech"] = [{"start": 0.1, "end": 1.9}]
    assert row["errors"] == []
    assert len(row["pred_turns"]) == 1 and row["pred_transcript"]  # diarization and ASR ran on the claimed speech
    assert row["pred_num_visible"] == 1 and len(row["pred_active_speaker"]) == 1


def _wav_with_garbage_tag(path, seconds=1.0, sr=16000):
    """A PCM wav whose LIST/INFO title holds non-UTF-8 bytes (as a damaged or random-bytes file does)."""
    import struct

    import numpy as np
    import soundfile as sf

    sf.write(str(path), np.zeros(int(seconds * sr), np.float32), sr, subtype="PCM_16")
    raw = path.read_bytes()
    val = b"\xff\xfe\x80\x81bad\x00"  # even length: RIFF chunks are word-aligned
    inam = b"INAM" + struct.pack("<I", len(val)) + val
    info = b"LIST" + struct.pack("<I", 4 + len(inam)) + b"INFO" + inam
    body = b"WAVE" + info + raw[12:]
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return str(path)


def test_undecodable_wav_is_quarantined_with_a_reason_naming_file_and_decoder(tmp_path):
    import pandas as pd

    from infra import storage
    from pipelines.curation.decode import decode_batch

    wav = _wav_with_garbage_tag(tmp_path / "meeting.Mix-Headset.wav")
    row = {"source": "ami", "media_uri": wav, "audio_uri": wav, "start_s": 0.0, "end_s": 1.0, "ref_json": "{}",
           "clip_id": "c1"}
    out = decode_batch(pd.DataFrame([row]), quarantine_dir=str(tmp_path / "q"), storage_cfg={}, sample_rate=16000,
                       fps=4.0, max_height=64, tolerance_s=0.1, verify=True)
    assert out.empty
    (reason,) = [r["reason"] for f in storage.list_files(str(tmp_path / "q"), ".parquet")
                 for r in storage.read_parquet(f).to_pylist()]
    assert reason.startswith(wav + ": not decodable audio/video") and "0xff" in reason, reason
    assert "metadata" in reason and not reason.split(": ", 1)[1].startswith("UnicodeDecodeError"), reason


def _written_run(tmp_path, *overrides: str):
    """A run folder as curation leaves it: the manifest of its config, and one clip part file."""
    import pyarrow as pa

    from pipelines.curation.manifest import write_manifest
    from pipelines.curation.pipeline import selected_stages

    cfg = load_app_config(None, [f"run.output_dir={tmp_path}", "run.name=t", *overrides])
    write_manifest(cfg, selected_stages(cfg))
    (tmp_path / "t" / "clips" / "ava").mkdir(parents=True)
    pa.parquet.write_table(pa.table({"clip_id": ["c1", "c2"]}), tmp_path / "t" / "clips" / "ava" / "part-x.parquet")
    return cfg


def _resume(tmp_path, *overrides: str) -> set[str]:
    from pipelines.curation.manifest import resumable_clip_ids
    from pipelines.curation.pipeline import selected_stages

    cfg = load_app_config(None, [f"run.output_dir={tmp_path}", "run.name=t", *overrides])
    return resumable_clip_ids(cfg, selected_stages(cfg))


def test_resume_stops_when_the_perception_config_changed(tmp_path):
    import pyarrow.parquet  # noqa: F401 (pa.parquet)

    _written_run(tmp_path, "perception.asr=faster_whisper")
    assert _resume(tmp_path, "perception.asr=faster_whisper") == {"c1", "c2"}
    # Thread, actor and weights-cache keys do not change outputs; a profile that resolves the same backends neither.
    assert _resume(tmp_path, "perception.asr=faster_whisper", "perception.torch_threads=2", "perception.audio.concurrency=3",
                   "perception.video.num_cpus=1.0", "perception.weights_cache=/elsewhere") == {"c1", "c2"}
    assert _resume(tmp_path, "perception.profile=accurate") == {"c1", "c2"}  # accurate's ASR is faster_whisper
    with pytest.raises(ConfigError) as err:
        _resume(tmp_path, "perception.asr=pocketsphinx")
    msg = str(err.value)
    assert "perception.asr: faster_whisper -> pocketsphinx" in msg and "run.name" in msg and "curate.resume=false" in msg
    with pytest.raises(ConfigError, match="perception.asr: faster_whisper -> pocketsphinx"):
        _resume(tmp_path, "perception.profile=fast")  # the profile's choice is what counts
    with pytest.raises(ConfigError) as err:  # every changed key is named, nested ones dotted
        _resume(tmp_path, "perception.silero.threshold=0.7", "curate.stages=[vad]")
    was = load_app_config(None).perception.silero.threshold
    assert (f"\n  curate.stages: [vad, diarization, asr, faces, active_speaker] -> [vad]\n"
            f"  perception.silero.threshold: {was} -> 0.7\n") in str(err.value)


def test_resume_without_a_manifest_stops_and_an_empty_run_starts(tmp_path):
    import pyarrow.parquet  # noqa: F401 (pa.parquet)

    _written_run(tmp_path)
    (tmp_path / "t" / "curation_manifest.json").unlink()
    with pytest.raises(ConfigError, match="no curation_manifest.json"):
        _resume(tmp_path)
    assert _resume(tmp_path / "fresh", "perception.asr=pocketsphinx") == set()  # nothing written: nothing to check
