"""lmms-eval hooks for the AMUSE tasks (copied into the exported task folder as ``utils.py``).

Every hook defers to this repository's task registry (``eval.tasks``): the prompt is the evaluator's
own rendering, the score is the task's own scorer, so an lmms-eval run and ``amuse evaluate`` agree.
Needs the ``amuse-raft`` package importable (``pip install -e .`` of this repository).
The docs are rows of the exported Hugging Face dataset (``eval.export.hf_dataset``).
"""

from __future__ import annotations

import io
import json


def _sample(doc: dict) -> dict:
    """A SAMPLE_SCHEMA-shaped dict from a dataset row (intervals come back from their JSON column)."""
    sample = dict(doc)
    iv = doc.get("answer_intervals")
    sample["answer_intervals"] = [{"start": a, "end": b} for a, b in json.loads(iv)] if iv else None
    return sample


def _task(doc: dict):
    from eval.tasks import get_task

    return get_task(doc["task"])


def process_docs(dataset, task: str):
    return dataset.filter(lambda doc: doc["task"] == task)


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """The evaluator's prompt for ``mode`` (zero_shot or guided; default zero_shot), system text first."""
    mode = (lmms_eval_specific_kwargs or {}).get("mode", "zero_shot")
    messages = _task(doc).render_prompt(_sample(doc), mode)
    return "\n\n".join(m["content"] for m in messages)


def _materialised(video: dict) -> str:
    """A local path to the clip's mp4: its bytes written once under the temp folder (lmms-eval's video
    models open paths), named by content so every process shares one copy."""
    import hashlib
    import os
    import tempfile

    if not video.get("bytes"):
        return video["path"]
    folder = os.path.join(tempfile.gettempdir(), "amuse-lmms-eval-clips")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, hashlib.sha1(video["bytes"]).hexdigest()[:16] + "-" + os.path.basename(video["path"]))
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.part"
        with open(tmp, "wb") as fh:
            fh.write(video["bytes"])
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return path


def doc_to_visual(doc: dict) -> list:
    """The clips' mp4 paths (the spans, cut at export) where they have video, else the clips' audio
    as {array, sampling_rate}."""
    if doc.get("video"):
        return [_materialised(v) for v in doc["video"]]
    import soundfile as sf

    out = []
    for a in doc.get("audio") or []:
        array, rate = sf.read(io.BytesIO(a["bytes"]), dtype="float32")
        out.append({"array": array, "sampling_rate": rate})
    return out


def doc_to_target(doc: dict) -> str:
    return doc["answer"]


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """The task's own per-sample score of the model's first output."""
    score = _task(doc).score(results[0] if results else None, _sample(doc))
    return {"amuse_score": float(score.score)}
