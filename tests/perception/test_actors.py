"""The actor contract end to end: Ray Data map_batches over every stage on a local 2-CPU cluster."""

import pandas as pd
import pytest

from infra.config import to_dict
from perception import tools
from perception.actors import STAGES, VadActor, as_config, resources, run_all


def _rows(clip):
    good = dict(clip["row"])
    bad = dict(clip["row"], clip_id="broken", media_uri="/nonexistent/missing.mp4")
    return [good, bad]


def test_actor_call_records_row_errors_without_failing_batch(three_speaker_clip, perception_cfg):
    out = VadActor(to_dict(perception_cfg))(pd.DataFrame(_rows(three_speaker_clip)))
    assert len(out) == 2 and out["t_vad"].dtype == float
    assert len(out.loc[0, "pred_speech"]) > 0 and out.loc[0, "errors"] == []
    assert out.loc[1, "pred_speech"] is None
    (err,) = out.loc[1, "errors"]
    assert err["stage"] == "vad" and "broken" in err["message"] and "missing.mp4" in err["message"]


@pytest.mark.slow
def test_ray_data_pipeline_all_stages(three_speaker_clip, perception_cfg):
    import ray

    # 5 stage actors at 0.3 CPU fit beside Ray Data's read task on 2 CPUs, so every stage is
    # alive at once and rows stream through; at 0.5 the fifth actor waits for a free CPU.
    sized = as_config({**to_dict(perception_cfg), "audio": {"num_cpus": 0.3}, "video": {"num_cpus": 0.3}})
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ds = ray.data.from_pandas(pd.DataFrame(_rows(three_speaker_clip)))
        cfg = to_dict(sized)
        for name, cls in STAGES.items():
            r = resources(sized, name)
            ds = ds.map_batches(cls, fn_constructor_kwargs={"cfg": cfg}, batch_format="pandas",
                                num_cpus=r["num_cpus"], num_gpus=r["num_gpus"], concurrency=r["concurrency"],
                                batch_size=r["batch_size"])
        df = ds.to_pandas().set_index("clip_id")
    finally:
        ray.shutdown()
    good, bad = df.loc["synth3"], df.loc["broken"]
    assert len(good["errors"]) == 0
    assert good["pred_num_speakers"] == 3 and good["pred_num_visible"] == 3
    assert len(good["pred_transcript"]) == len(good["pred_turns"]) and len(good["pred_active_speaker"]) == 3
    assert all(good[f"t_{s}"] > 0 for s in STAGES)
    assert [e["stage"] for e in bad["errors"]] == list(STAGES)


def test_run_all_and_tools_agree(three_speaker_clip, perception_cfg):
    clip = three_speaker_clip
    out = run_all(clip["row"], perception_cfg, stages=("vad", "diarization", "asr"))
    res = tools.diarize(clip["mp4"], 0.0, clip["row"]["end_s"], cfg=perception_cfg)
    assert res["turns"] == [{k: t[k] for k in ("start", "end", "speaker")} for t in out["pred_turns"]]
    tr = tools.transcribe(clip["wav"], 0.0, 10.0, cfg=perception_cfg)
    assert tr["text"] and all(s["end"] <= 10.05 for s in tr["segments"])
    det = tools.detect_faces(clip["mp4"], 2.0, 4.0, fps=2.0, cfg=perception_cfg)
    assert [len(f["faces"]) for f in det["frames"]] == [3, 3, 3, 3]
    assert all(2.0 <= f["t"] < 4.0 for f in det["frames"])
