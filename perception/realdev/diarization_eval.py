"""Diarization and VAD judged on the real-speech conversations: DER and its parts, and speaker counting.

DER is pyannote.metrics' DiarizationErrorRate (collar 0.25 s, overlap scored), accumulated over the
conversations, with its parts (missed speech, false alarm, confusion) as shares of reference speech
time. The speaker count is estimated (``perception.num_speakers`` unset) unless a caller fixes it.

    python -m perception.realdev.diarization_eval [--split tune|check] [--set resemblyzer.min_silhouette=0.1 ...]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from perception.config import PerceptionConfig


def _annotation(turns: list[dict]):
    from pyannote.core import Annotation, Segment

    ann = Annotation()
    for i, t in enumerate(turns):
        ann[Segment(float(t["start"]), float(t["end"])), i] = t["speaker"]
    return ann


def run_conversations(convs: list[dict], cfg: PerceptionConfig) -> list[dict[str, Any]]:
    """VAD then diarization on each conversation (in process, 1 thread); the turns and the seconds each took."""
    from perception.actors import get_stage

    vad, diar = get_stage("vad", cfg), get_stage("diarization", cfg)
    out = []
    for c in convs:
        row = {"clip_id": c["conversation_id"], "media_uri": c["audio"], "audio_uri": None, "start_s": 0.0,
               "end_s": None, "fps": 0.0}
        t0 = time.perf_counter()
        row.update(vad.run(row))
        t1 = time.perf_counter()
        row.update(diar.run(row))
        t2 = time.perf_counter()
        out.append({"conversation_id": c["conversation_id"], "turns": row["pred_turns"], "speech": row["pred_speech"],
                    "t_vad": t1 - t0, "t_diarization": t2 - t1})
    return out


def score(convs: list[dict], hyps: list[dict], collar: float = 0.25) -> dict[str, Any]:
    """Corpus DER and parts, per-conversation DER, speaker-count accuracy, and the speed of each stage."""
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=collar)
    per = []
    for c, h in zip(convs, hyps, strict=True):
        uem = Timeline([Segment(0.0, float(c["duration_s"]))])
        d = metric(_annotation(c["turns"]), _annotation(h["turns"]), uem=uem, detailed=True)
        n_ref, n_hyp = len({t["speaker"] for t in c["turns"]}), len({t["speaker"] for t in h["turns"]})
        per.append({"id": c["conversation_id"], "der": round(d["diarization error rate"], 4), "ref_speakers": n_ref,
                    "hyp_speakers": n_hyp})
    total = metric[:]  # accumulated components
    ref = total["total"]
    media = sum(float(c["duration_s"]) for c in convs)
    return {
        "der": round(abs(metric), 4),
        "missed": round(total["missed detection"] / ref, 4),
        "false_alarm": round(total["false alarm"] / ref, 4),
        "confusion": round(total["confusion"] / ref, 4),
        "count_accuracy": round(float(np.mean([p["ref_speakers"] == p["hyp_speakers"] for p in per])), 3),
        "count_under": int(sum(p["hyp_speakers"] < p["ref_speakers"] for p in per)),
        "count_over": int(sum(p["hyp_speakers"] > p["ref_speakers"] for p in per)),
        "conversations": len(convs),
        "media_s": round(media, 1),
        "rtf_vad": round(sum(h["t_vad"] for h in hyps) / media, 4),
        "rtf_diarization": round(sum(h["t_diarization"] for h in hyps) / media, 4),
        "per_conversation": per,
    }


def evaluate(split: str = "tune", overrides: dict | None = None) -> dict[str, Any]:
    from perception.actors import as_config
    from perception.realdev.conversations import ConversationPlan, build, load

    convs = load(build(ConversationPlan(split=split, seed={"tune": 0, "check": 1}[split])))
    cfg = as_config(overrides or {})
    return score(convs, run_conversations(convs, cfg))


def _parse_sets(items: list[str]) -> dict:
    out: dict = {}
    for item in items:
        key, _, val = item.partition("=")
        node = out
        *path, last = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = json.loads(val) if val[:1] in "[{-0123456789tfn" else val
    return out


def main() -> None:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="tune", choices=("tune", "check"))
    ap.add_argument("--set", action="append", default=[], help="perception config override, key.path=value")
    ap.add_argument("--per", action="store_true", help="print every conversation")
    args = ap.parse_args()
    res = evaluate(args.split, _parse_sets(args.set))
    per = res.pop("per_conversation")
    print(json.dumps(res))
    if args.per:
        for p in per:
            print(p)


if __name__ == "__main__":
    main()
