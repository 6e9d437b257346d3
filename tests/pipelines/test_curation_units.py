"""Curation pieces that need no Ray cluster: config, actor sizing, stitching, records, relative roots."""

from __future__ import annotations

import json

import pytest
from corpus_fixtures import make_video, write_voxceleb2

from infra.config import ConfigError
from infra.media import probe
from pipelines.config import REPO_ROOT, load_app_config
from pipelines.curation.assemble import concat_media
from pipelines.curation.pipeline import actor_resources, selected_stages
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
    assert rec["gt_turns"] == row["gt_turns"]  # a pred-side column named gt_* is ignored
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
