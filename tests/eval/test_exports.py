"""`amuse export` on the evaluated run: RTTM that scores like the clip records, a Hugging Face dataset
that `datasets` loads with its Audio and Video features, and an lmms-eval task folder per registered task.

lmms-eval 0.7.3 cannot be installed with its dependencies here (it requires torchvision and av<16), so the
folder is validated against its TaskConfig schema and its hooks are run the way lmms-eval runs them; where
lmms-eval is importable (``make lmms-eval-check``: installed without its dependencies in a throwaway venv),
its own task loader reads the folder too."""

from __future__ import annotations

import importlib.util
import io

import pytest


@pytest.fixture(scope="module")
def exported(evaluated_run, tmp_path_factory):
    from pipelines import export

    out = tmp_path_factory.mktemp("export")
    assert export.main(["--set", f"eval.samples_uri={evaluated_run['cfg'].eval.samples_uri}",
                        "--set", f"eval.clips_uri={evaluated_run['cfg'].eval.clips_uri}", "--out", str(out)]) == 0
    return out


def _read_rttm(text: str):
    from pyannote.core import Annotation, Segment

    anns: dict = {}
    for line in text.splitlines():
        f = line.split()
        assert len(f) == 10 and f[0] == "SPEAKER", line  # the NIST layout md-eval reads
        ann = anns.setdefault(f[1], Annotation(uri=f[1]))
        ann[Segment(float(f[3]), float(f[3]) + float(f[4])), len(ann)] = f[7]
    return anns


def test_rttm_round_trips_and_scores_like_the_records(exported, evaluated_run):
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    from eval.export.rttm import annotation

    pred = _read_rttm((exported / "rttm" / "pred.rttm").read_text())
    ref = _read_rttm((exported / "rttm" / "ref.rttm").read_text())
    clips = {c["clip_id"]: c for c in evaluated_run["clips"]}
    assert set(pred) == set(ref) == set(clips)
    uem = {line.split()[0]: (float(line.split()[2]), float(line.split()[3]))
           for line in (exported / "rttm" / "clips.uem").read_text().splitlines()}
    for cid, c in clips.items():
        assert uem[cid] == pytest.approx((c["start_s"], c["end_s"]))
        span = Timeline([Segment(*uem[cid])])
        from_file = DiarizationErrorRate(collar=0.25)(ref[cid], pred[cid], uem=span)
        from_records = DiarizationErrorRate(collar=0.25)(annotation(c, "gt_turns"), annotation(c, "pred_turns"), uem=span)
        assert from_file == pytest.approx(from_records, abs=1e-3)
        assert 0 < from_records < 1  # jittered perception: imperfect, not empty


def test_hf_dataset_loads_with_audio_and_video_features(exported, evaluated_run):
    import datasets
    import soundfile as sf
    from datasets import Audio, Video

    ds = datasets.load_dataset("parquet", data_dir=str(exported / "hf"))
    samples = {s["sample_id"]: s for s in
               __import__("pyarrow.parquet").parquet.read_table(evaluated_run["cfg"].eval.samples_uri).to_pylist()}
    assert sum(len(d) for d in ds.values()) == len(samples)
    assert {s["task"] for s in samples.values()} == set(ds["train"]["task"]) | set(ds["test"]["task"])
    features = ds["test"].features
    assert isinstance(features["audio"].feature, Audio) and isinstance(features["video"].feature, Video)
    row = ds["test"][0]
    clip = {c["clip_id"]: c for c in evaluated_run["clips"]}[row["clip_ids"][0]]
    audio, rate = sf.read(io.BytesIO(row["audio"][0]["bytes"]))
    assert rate == 16000 and len(audio) / rate == pytest.approx(clip["end_s"] - clip["start_s"], abs=0.05)
    assert row["video"] == []  # the synthetic clips are audio-only (a .wav media file)
    assert row["question"] == samples[row["sample_id"]]["question"]


def test_lmms_eval_folder_matches_schema_and_scores_with_the_task_scorer(exported):
    import datasets

    from eval.export import lmms_eval
    from eval.tasks import get_task, task_names

    folder = exported / "lmms_eval" / "amuse"
    assert sorted(lmms_eval.check(folder)) == sorted(lmms_eval.task_key(t) for t in task_names())
    spec = importlib.util.spec_from_file_location("utils", folder / "utils.py")  # as lmms-eval's !function does
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    for task in task_names():
        config = lmms_eval.load(folder / f"{lmms_eval.task_key(task)}.yaml")
        data = {k: str((folder / v).resolve()) for k, v in config["dataset_kwargs"]["data_files"].items()}
        docs = getattr(utils, config["process_docs"].split(".")[1])(
            datasets.load_dataset(config["dataset_path"], data_files=data, split=config["test_split"]))
        if not len(docs):
            continue
        doc = docs[0]
        assert doc["task"] == task
        text = getattr(utils, config["doc_to_text"].split(".")[1])(doc, config["lmms_eval_specific_kwargs"]["default"])
        assert doc["question"] in text
        visual = utils.doc_to_visual(doc)
        assert visual and visual[0]["sampling_rate"] == 16000 and len(visual[0]["array"]) > 0
        reference = get_task(task).reference_response(utils._sample(doc), "zero_shot")
        good = utils.process_results(doc, [reference])["amuse_score"]
        bad = utils.process_results(doc, ["no idea"])["amuse_score"]
        assert good > bad, (task, good, bad)


def test_lmms_eval_check_names_a_bad_key(tmp_path):
    from eval.export import lmms_eval

    lmms_eval.write(tmp_path, "x.parquet")
    path = tmp_path / "amuse_stg.yaml"
    path.write_text(path.read_text() + "bogus_field: 1\n")
    with pytest.raises(ValueError, match="amuse_stg.yaml.*bogus_field"):
        lmms_eval.check(tmp_path)


def test_hf_video_is_the_clip_span_not_the_source_file(tmp_path):
    """A clip 10-13 s into a 31 s corpus video: the dataset carries those 3 s as mp4 bytes (frames and
    audio of the span), and the lmms-eval hook hands a model that clip, never the whole source file."""
    from pathlib import Path

    import numpy as np
    import pyarrow as pa

    from eval.export import hf_dataset, lmms_eval_utils
    from infra.media import decode_audio, iter_frames, probe

    src = str(Path(__file__).resolve().parents[2] / "data" / "corpus" / "youtube" / "_tRNU-PHGGI.mp4")
    clip = {"clip_id": "yt_10_13", "media_uri": src, "audio_uri": None, "start_s": 10.0, "end_s": 13.0}
    sample = {"sample_id": "s0", "task": "STG", "split": "test", "question": "q", "answer": "[[0.5, 1.0]]",
              "clip_ids": ["yt_10_13"]}
    (row,) = hf_dataset.rows([sample], {"yt_10_13": clip})
    (video,) = row["video"]
    assert video["path"] == "yt_10_13.mp4" and video["bytes"]
    pa.table({"video": [row["video"]]})  # plain structs, as the Video feature stores them
    local = lmms_eval_utils.doc_to_visual(row)[0]
    info = probe(local)
    assert info.has_video and info.has_audio and info.duration_s == pytest.approx(3.0, abs=0.1)
    assert probe(src).duration_s > 30  # the source the old export pointed at
    # the audio is the span's audio, the frames the span's frames
    cut, ref = decode_audio(local), decode_audio(src, 10.0, 13.0)
    n = min(len(cut), len(ref))
    assert n > 2.9 * 16000 and np.corrcoef(cut[:n], ref[:n])[0, 1] > 0.9
    (_, first_cut), = list(iter_frames(local, 1.0, 1.04, 25.0, None))[:1]
    (_, first_src), = list(iter_frames(src, 11.0, 11.04, 25.0, None))[:1]
    assert np.abs(first_cut.astype(int) - first_src.astype(int)).mean() < 8


@pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None,
                    reason="lmms-eval is not installed here (it requires torchvision and av<16): make lmms-eval-check")
def test_lmms_eval_task_loader_reads_the_folder(exported):
    """lmms-eval's own loader: its TaskManager finds every task of the folder, builds each task (YAML with
    the template included, ``!function`` hooks from utils.py, the Parquet test split through ``datasets``)
    and its hooks give the prompt, the audio and a score. Skipped where lmms-eval is not installed, which
    is the project venv: lmms-eval 0.7.3 requires torchvision and av<16 (PLATFORM.md). ``make lmms-eval-check``
    runs it in a throwaway venv over this one with lmms-eval installed without its dependencies."""
    from lmms_eval.tasks import TaskManager, get_task_dict

    from eval.export import lmms_eval
    from eval.tasks import get_task, task_names

    folder = exported / "lmms_eval" / "amuse"
    names = [lmms_eval.task_key(t) for t in task_names()]
    manager = TaskManager(include_path=str(folder), include_defaults=False)
    assert set(names) <= set(manager.all_tasks)
    built = get_task_dict(names, manager)
    assert set(built) == set(names)
    scored = 0
    for task in task_names():
        t = built[lmms_eval.task_key(task)]
        docs = list(t.test_docs())
        if not docs:
            continue
        doc = docs[0]
        assert doc["task"] == task and doc["question"] in t.doc_to_text(doc)
        assert t.doc_to_visual(doc)[0]["sampling_rate"] == 16000
        sample = t.config.process_results.__globals__["_sample"]  # utils.py, as lmms-eval imported it
        reference = get_task(task).reference_response(sample(doc), "zero_shot")
        assert t.process_results(doc, [reference])["amuse_score"] > t.process_results(doc, ["no idea"])["amuse_score"]
        scored += 1
    assert scored >= 3
