"""Active-speaker accuracy on the real talking-head scenes (``perception.realdev.talking_heads``).

Each scene runs through the face stage and then an active-speaker backend, as the pipeline runs them;
predicted tracks are matched to identities by box IoU (``scoring.match_tracks``) and every reported
score becomes an AVA-style row labelled from the identity's speaking references (``scoring.asd_rows``).
Reported: AVA mAP (``scoring.ava_map``, the official script's VOC AP) with scikit-learn's average
precision as a cross-check, frame accuracy at 0.5, the accuracy of always answering NOT_SPEAKING on
the same rows, the same per scene kind (``still`` / ``muted``), and real-time factors.

    python -m perception.realdev.asd_eval --backends light_asd motion_corr \\
        --set light_asd.model_path=../shared/data/real/weights/light_asd/pretrain_AVA_CVPR.model
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

import numpy as np

from infra.config import load_config
from perception.actors import as_config, get_stage, set_threads
from perception.config import PerceptionConfig
from perception.realdev.talking_heads import TalkingHeadsSpec, load
from perception.scoring import asd_accuracy, asd_rows, ava_map, match_tracks

SPEAKING = "SPEAKING_AUDIBLE"


def scene_row(scene: dict) -> dict[str, Any]:
    return {"clip_id": scene["scene_id"], "media_uri": scene["media_uri"], "audio_uri": None,
            "start_s": 0.0, "end_s": float(scene["duration_s"])}


def gt_boxes(scene: dict) -> dict[str, list[tuple[float, ...]]]:
    return {p: [tuple(b) for b in boxes] for p, boxes in scene["boxes"].items()}


def gt_turns(scene: dict) -> list[tuple[float, float, str]]:
    return [(float(a), float(b), str(p)) for a, b, p in scene["speaking_turns"]]


def metrics(rows: list[tuple[str, float, str, str, float]]) -> dict[str, float | int | None]:
    """AVA mAP, scikit-learn AP, accuracy at 0.5 and the always-NOT_SPEAKING accuracy of ``rows``."""
    from sklearn.metrics import average_precision_score

    if not rows:
        return {"rows": 0, "map": None, "ap_sklearn": None, "accuracy": None, "always_silent": None}
    labels = np.array([r[3] == SPEAKING for r in rows])
    scores = np.array([r[4] for r in rows])
    ap = float(average_precision_score(labels, scores)) if labels.any() else None
    return {"rows": len(rows), "map": round(ava_map(rows), 4), "ap_sklearn": None if ap is None else round(ap, 4),
            "accuracy": round(asd_accuracy(rows), 4), "always_silent": round(float(1 - labels.mean()), 4),
            "distinct_scores": int(len(np.unique(scores)))}


def face_tracks(scenes: list[dict], cfg) -> tuple[dict[str, list[dict]], float]:
    """Face-stage tracks per scene and the stage's seconds."""
    stage, out, t0 = get_stage("faces", cfg), {}, time.perf_counter()
    for s in scenes:
        out[s["scene_id"]] = stage.run(scene_row(s))["pred_face_tracks"]
    return out, time.perf_counter() - t0


def evaluate(backend: str, scenes: list[dict], tracks: dict[str, list[dict]], cfg: PerceptionConfig | None = None) -> dict:
    """Run ``backend`` on every scene (with the given face tracks) and score it."""
    stage = get_stage("active_speaker", dataclasses.replace(as_config(cfg), active_speaker=backend))
    rows_by_kind: dict[str, list] = {}
    all_rows, seconds, duration, matched, identities = [], 0.0, 0.0, 0, 0
    for s in scenes:
        row = {**scene_row(s), "pred_face_tracks": tracks[s["scene_id"]]}
        t0 = time.perf_counter()
        res = stage.run(row)["pred_active_speaker"]
        seconds += time.perf_counter() - t0
        duration += float(s["duration_s"])
        mapping = match_tracks(gt_boxes(s), tracks[s["scene_id"]])
        matched, identities = matched + len(mapping), identities + len(s["identities"])
        rows = asd_rows(gt_turns(s), res, mapping, video_id=s["scene_id"])
        all_rows += rows
        rows_by_kind.setdefault(s["kind"], []).extend(rows)
    return {"backend": backend, **metrics(all_rows), "matched_identities": f"{matched}/{identities}",
            "rtf": round(seconds / max(duration, 1e-9), 3),
            "by_kind": {k: metrics(v) for k, v in sorted(rows_by_kind.items())}}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", nargs="+", default=["light_asd", "motion_corr"])
    ap.add_argument("--scenes", type=int, default=TalkingHeadsSpec.n_scenes)
    ap.add_argument("--seed", type=int, default=TalkingHeadsSpec.seed)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="perception config override without the perception. prefix, e.g. light_asd.model_path=...")
    args = ap.parse_args(argv)
    cfg = load_config(PerceptionConfig, None, [o.removeprefix("perception.") for o in args.set])
    scenes = load(TalkingHeadsSpec(seed=args.seed, n_scenes=args.scenes))
    tracks, face_s = face_tracks(scenes, cfg)
    duration = sum(float(s["duration_s"]) for s in scenes)
    out = {"scenes": len(scenes), "duration_s": duration, "faces_rtf": round(face_s / duration, 3),
           "results": [evaluate(b, scenes, tracks, cfg) for b in args.backends]}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    set_threads(PerceptionConfig())  # 1 thread everywhere, as the actors run
    main()
