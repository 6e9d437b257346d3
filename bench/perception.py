"""Perception benchmark: accuracy on the real development set beside the synthetic corpus, and speed.

Parts (``--only`` runs some of them; the others keep their figures from the results file):

- ``real_diarization``: VAD + diarization on the real-speech conversations
  (``perception.realdev.conversations``, LibriSpeech voices, reverberation and noise), splits
  ``tune`` and ``check`` (``check`` holds only speakers the tuning never heard), speaker count
  estimated: DER (pyannote.metrics, collar 0.25), missed speech, false alarm, confusion,
  speaker-count accuracy (``perception.realdev.diarization_eval``).
- ``sensitivity``: the same DER with each tuned knob moved around its default (``KNOBS``), on both splits.
- ``real_asd``: active speaker on the real talking-head scenes (``perception.realdev.talking_heads``,
  kinds ``still`` and ``muted``) for Light-ASD (real AVA-trained weights) and motion_corr: AVA mAP,
  scikit-learn AP, accuracy at 0.5 and the accuracy of always answering NOT_SPEAKING
  (``perception.realdev.asd_eval``).
- ``corpus``: the whole embedded stack (VAD, diarization, ASR, faces, active speaker) per profile
  (``accurate``: faster-whisper Whisper base, ``fast``: pocketsphinx) on the generated corpus, one
  process, 1 thread: RTF per stage and of the stack on the video scenes (wall clock and process CPU
  time), and the corpus accuracy (DER, WER, face recall, active speaker) per profile.
- ``faces``: face detection frames per second per core at 360p (dlib HOG and OpenCV Haar).
- ``pool``: serial against a warm Ray actor pool of 2 on the same clips (audio stack, default profile).

Every figure goes to ``bench/results/perception.json``; the "Perception" section of bench/README.md is
rendered from that file alone (``bench/perception_report.py``).

    .venv/bin/python bench/perception.py                      # everything (~20 min on 2 busy cores)
    .venv/bin/python bench/perception.py --only real          # real_diarization, sensitivity, real_asd
    .venv/bin/python bench/perception.py --only speed         # corpus, faces, pool
    .venv/bin/python bench/perception.py --quick              # a smoke run into perception_quick.json
    .venv/bin/python bench/perception.py --from-json          # re-render the README section only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # ahead of bench/ (the script's folder), whose perception.py would shadow the package
from _readme import replace_section  # noqa: E402
from perception_report import render  # noqa: E402

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

OUT = REPO / "bench" / "results" / "perception.json"
QUICK_OUT = REPO / "bench" / "results" / "perception_quick.json"
AUDIO = ("vad", "diarization", "asr")
PARTS = ("real_diarization", "sensitivity", "real_asd", "corpus", "faces", "pool")
ALIASES = {"real": ("real_diarization", "sensitivity", "real_asd"), "speed": ("corpus", "faces", "pool")}
SPLITS = ("tune", "check")
# Tuned knobs and the values tried around each default (the default is read from PerceptionConfig).
# pitch_min_centroid_cos 1.01 means pitch is never used (a cosine never exceeds 1).
KNOBS: dict[str, tuple] = {
    "silero.threshold": (0.25, 0.35, 0.5),
    "normalize_dbfs": (None, -20.0, -30.0),
    "resemblyzer.pitch_min_centroid_cos": (0.8, 0.87, 1.01),
    "resemblyzer.min_silhouette": (0.04, 0.08, 0.15),
    "resemblyzer.embeddings_per_s": (3.0, 5.0),
}
SUMMARY_KEYS = ("der", "missed", "false_alarm", "confusion", "count_accuracy", "count_under", "count_over",
                "conversations", "media_s", "rtf_vad", "rtf_diarization")


class LoadSampler:
    """The machine's 1-minute load average, sampled every ``every_s`` while a part runs (it is shared)."""

    def __init__(self, every_s: float = 5.0):
        self.every_s, self.samples, self._stop = every_s, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every_s)

    def __enter__(self) -> LoadSampler:
        self.t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        self.meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "wall_s": round(time.perf_counter() - self.t0, 1),
                     "load_1min_mean": round(sum(self.samples) / len(self.samples), 2),
                     "load_1min_max": round(max(self.samples), 2), "load_samples": len(self.samples)}


def _set(d: dict, dotted: str, value) -> dict:
    """``{"a": {"b": value}}`` for ``"a.b"``: the nested override shape as_config takes."""
    *path, last = dotted.split(".")
    node = d
    for p in path:
        node = node.setdefault(p, {})
    node[last] = value
    return d


def _default(dotted: str):
    from perception.config import PerceptionConfig

    node = PerceptionConfig()
    for p in dotted.split("."):
        node = getattr(node, p)
    return node


# ---------------------------------------------------------------- real development set


def real_diarization() -> dict:
    from perception.realdev.diarization_eval import evaluate

    return {split: evaluate(split) for split in SPLITS}


def sensitivity(defaults: dict | None) -> list[dict]:
    """DER on both splits with one knob moved at a time; the default point comes from ``defaults``
    (the real_diarization part) when it ran with the same code, else it is evaluated here."""
    from perception.realdev.diarization_eval import evaluate

    out = []
    for knob, values in KNOBS.items():
        default = _default(knob)
        for value in values:
            is_default = value == default
            row = {"knob": knob, "value": value, "default": is_default}
            for split in SPLITS:
                if is_default and defaults:
                    res = defaults[split]
                else:
                    res = evaluate(split, {} if is_default else _set({}, knob, value))
                row[split] = {k: res[k] for k in SUMMARY_KEYS}
            out.append(row)
            print(f"sensitivity {knob}={value}: tune DER {row['tune']['der']}, check DER {row['check']['der']}",
                  flush=True)
    return out


def real_asd(backends: list[str]) -> dict:
    from perception.actors import as_config
    from perception.realdev import asd_eval, require_root
    from perception.realdev.talking_heads import TalkingHeadsSpec, load

    weights = require_root() / "weights"
    cfg = as_config({"weights_dir": str(weights)})
    spec = TalkingHeadsSpec()
    scenes = load(spec)
    tracks, face_s = asd_eval.face_tracks(scenes, cfg)
    duration = sum(float(s["duration_s"]) for s in scenes)
    results = []
    for b in backends:
        r = {**asd_eval.evaluate(b, scenes, tracks, cfg), "score_hop_s": getattr(cfg, b).score_hop_s}
        if b == "light_asd":
            r["weights"] = Path(cfg.light_asd.model_path or "light_asd/pretrain_AVA_CVPR.model").name
        results.append(r)
    kinds = {k: sum(s["kind"] == k for s in scenes) for k in sorted({s["kind"] for s in scenes})}
    return {"scenes": len(scenes), "scenes_by_kind": kinds, "duration_s": duration, "people_per_scene":
            [len(s["identities"]) for s in scenes], "faces_rtf": round(face_s / duration, 3), "results": results}


# ---------------------------------------------------------------- corpus


def media_s(row: dict) -> float:
    return float(row["end_s"]) - float(row["start_s"])


def stack_run(scenes: list[dict], profile: str, fps_sample: float) -> tuple[dict, dict]:
    """Every stage on every corpus scene (the video stages where there is video), serial, in process,
    after a warm-up; per-stage and whole-stack wall and CPU seconds, and the outputs per scene."""
    from perception import corpus_eval as ce
    from perception.actors import STAGE_ORDER, apply_stage, as_config, get_stage, warm_up

    cfg = as_config({"profile": profile, "fps_sample": fps_sample})
    stages = {n: get_stage(n, cfg) for n in STAGE_ORDER}  # every model loaded before timing
    warm_s = warm_up(list(stages.values()))
    per = {n: {"backend": cfg.backend(n), "media_s": 0.0, "wall_s": 0.0, "cpu_s": 0.0} for n in STAGE_ORDER}
    outs, errors, video_media = {}, [], 0.0
    for sc in scenes:
        row = {**ce.scene_row(sc), "errors": []}
        video = row["fps"] is None
        if not video:
            continue  # audio-only scenes run below, for accuracy only: the stack is timed on video scenes
        for n in STAGE_ORDER:
            t0, c0 = time.perf_counter(), time.process_time()
            row.update(apply_stage(stages[n], row))
            per[n]["wall_s"] += time.perf_counter() - t0
            per[n]["cpu_s"] += time.process_time() - c0
            per[n]["media_s"] += media_s(row)
        video_media += media_s(row)
        outs[sc["scene_id"]] = row
        errors += row["errors"]
    for sc in scenes:  # audio-only scenes: audio stages, untimed
        if sc["scene_id"] not in outs:
            row = {**ce.scene_row(sc), "errors": []}
            for n in AUDIO:
                row.update(apply_stage(stages[n], row))
            outs[sc["scene_id"]] = row
            errors += row["errors"]
    for p in per.values():
        p["rtf"], p["cpu_rtf"] = p["wall_s"] / p["media_s"], p["cpu_s"] / p["media_s"]
    wall, cpu = sum(p["wall_s"] for p in per.values()), sum(p["cpu_s"] for p in per.values())
    stack = {"scenes": sum(1 for sc in scenes if ce.scene_row(sc)["fps"] is None), "media_s": video_media,
             "wall_s": wall, "cpu_s": cpu, "rtf": wall / video_media, "cpu_rtf": cpu / video_media,
             "warm_up_s": warm_s}
    return {"profile": profile, "stages": per, "stack": stack, "errors": [e["message"] for e in errors]}, outs


def corpus_accuracy(scenes: list[dict], outs: dict) -> dict:
    from perception import corpus_eval as ce
    from perception.scoring import der, der_total, wer

    pairs, refs, hyps, asd, ava, recalls = [], [], [], [], [], []
    for sc in scenes:
        out = outs[sc["scene_id"]]
        pairs.append((ce.gt_turns(sc), out.get("pred_turns") or [], (sc["start"], sc["end"])))
        refs.append(" ".join(t["text"] for t in sc["turns"]))
        hyps.append(" ".join(s["text"] for s in out.get("pred_transcript") or [] if s["text"]))
        if out.get("pred_face_tracks") is not None:
            vm = ce.video_metrics(sc, out)
            recalls.append(vm["face_recall"])
            asd += vm["asd_rows"]
            ava += vm["ava_rows"]
    per_scene = {sc["scene_id"]: round(der(*p[:2], uem=p[2]), 4) for sc, p in zip(scenes, pairs, strict=True)}
    summary = ce.summarize(asd, ava)
    if not ava:  # no AVA scene among those run: no figure rather than ava_map's 0 for no rows
        summary["ava_map"] = None
    return {"der": der_total(pairs), "der_per_scene": per_scene, "wer": wer(refs, hyps),
            "face_recall": sum(recalls) / max(len(recalls), 1) if recalls else None, **summary,
            "n_audio": len(pairs), "n_video": len(recalls), "n_ava_rows": len(ava)}


def corpus(scenes: list[dict], profiles: list[str], fps_sample: float) -> dict:
    out = {"scenes": len(scenes), "fps_sample": fps_sample, "profiles": {}}
    for profile in profiles:
        speed, outs = stack_run(scenes, profile, fps_sample)
        out["profiles"][profile] = {**speed, "accuracy": corpus_accuracy(scenes, outs)}
        s = speed["stack"]
        print(f"corpus {profile}: stack RTF {s['rtf']:.3f} (CPU {s['cpu_rtf']:.3f}), "
              f"WER {out['profiles'][profile]['accuracy']['wer']:.3f}", flush=True)
    return out


def face_fps(scenes: list[dict], fps_sample: float, max_frames: int = 120) -> dict:
    """dlib HOG / Haar detect() frames per second on one thread, on 360p frames sampled at fps_sample."""
    from perception import corpus_eval as ce
    from perception.actors import as_config, set_threads
    from perception.faces import FACE_BACKENDS
    from perception.media_io import load_frames

    cfg = as_config({"fps_sample": fps_sample})
    set_threads(cfg)
    frames = []
    for sc in scenes:
        row = ce.scene_row(sc)
        if row["fps"] is None:
            frames += [f for _, f in load_frames(row, cfg.fps_sample, cfg.max_height)]
        if len(frames) >= max_frames:
            break
    frames = frames[:max_frames]
    out = {"frames": len(frames), "height": int(frames[0].shape[0]) if frames else 0, "fps_sample": fps_sample}
    for det in ("hog", "haar"):
        c = as_config({"fps_sample": fps_sample, "opencv_dlib": {"detector": det}})
        backend = FACE_BACKENDS.create("opencv_dlib", c)
        backend.detect(frames[0])
        t0 = time.perf_counter()
        for f in frames:
            backend.detect(f)
        out[det] = len(frames) / (time.perf_counter() - t0)
    return out


def pool_vs_serial(scenes: list[dict], fps_sample: float, n_clips: int) -> dict:
    """Wall time for the same rows (audio stack, default profile): in process one after another, and over
    a warm Ray actor pool of 2 (private Ray, 2 CPUs, actors with num_cpus 0.9)."""
    import ray
    from ray.util import ActorPool

    from infra.config import to_dict
    from perception import corpus_eval as ce
    from perception.actors import as_config, get_stage, run_all

    cfg = as_config({"fps_sample": fps_sample})
    rows = [ce.scene_row(sc) for sc in scenes[:n_clips]]
    for n in AUDIO:
        get_stage(n, cfg)
    run_all(rows[0], cfg, stages=AUDIO)  # warm, as the actors are below
    t0 = time.perf_counter()
    for r in rows:
        run_all(r, cfg, stages=AUDIO)
    serial = time.perf_counter() - t0

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote(num_cpus=0.9)
        class Worker:
            def __init__(self, c):
                from perception.actors import as_config

                self.cfg = as_config(c)

            def run(self, row, stg):
                from perception.actors import run_all as ra

                return ra(row, self.cfg, stages=stg)

        workers = [Worker.remote(to_dict(cfg)) for _ in range(2)]
        ray.get([w.run.remote(rows[0], AUDIO) for w in workers])  # load models in both actors
        pool = ActorPool(workers)
        t0 = time.perf_counter()
        list(pool.map_unordered(lambda w, r: w.run.remote(r, AUDIO), rows))
        pooled = time.perf_counter() - t0
    finally:
        ray.shutdown()
    return {"clips": len(rows), "media_s": sum(media_s(r) for r in rows), "asr": cfg.backend("asr"),
            "serial_s": serial, "pool_s": pooled, "speedup": serial / pooled}


# ---------------------------------------------------------------- driver


def code_state() -> dict:
    """The commit measured, and perception/ files that differed from it when the run started."""
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout

    dirty = [line[3:] for line in git("status", "--porcelain", "perception").splitlines()]  # "XY path"
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "perception_uncommitted": dirty}


def parts_of(only: list[str] | None) -> list[str]:
    if not only:
        return list(PARTS)
    out = []
    for name in only:
        for p in ALIASES.get(name, (name,)):
            if p not in PARTS:
                raise SystemExit(f"--only {name}: unknown part (known: {', '.join(PARTS + tuple(ALIASES))})")
            if p not in out:
                out.append(p)
    return sorted(out, key=PARTS.index)  # sensitivity reuses real_diarization's default point


def run_parts(args, parts: list[str], results: dict) -> None:
    from perception import corpus_eval as ce

    scenes = ce.load_scenes(args.corpus)
    if args.scenes:
        scenes = scenes[: args.scenes]
    jobs = {
        "real_diarization": real_diarization,
        "sensitivity": lambda: sensitivity(results["real_diarization"]["result"] if "real_diarization" in parts
                                           else None),
        "real_asd": lambda: real_asd(args.asd_backends),
        "corpus": lambda: corpus(scenes, args.profiles, args.fps_sample),
        "faces": lambda: face_fps(scenes, args.fps_sample),
        "pool": lambda: pool_vs_serial(scenes, args.fps_sample, args.pool_clips),
    }
    for p in parts:
        print(f"== {p}", flush=True)
        with LoadSampler() as load:
            res = jobs[p]()
        results[p] = {"meta": {**load.meta, **code_state()}, "result": res}
        print(json.dumps({p: {k: v for k, v in results[p].items() if k == "meta"}}), flush=True)
        save(results, args.out)  # after each part: a later failure keeps what was measured


def save(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=float) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="PART", help=f"parts to run: {', '.join(PARTS)}, or real / speed")
    ap.add_argument("--quick", action="store_true", help="4 corpus scenes, 2 pool clips, no sensitivity; writes "
                    f"{QUICK_OUT.relative_to(REPO)} and leaves the README alone")
    ap.add_argument("--corpus", default=str(REPO / "data" / "corpus"))
    ap.add_argument("--scenes", type=int, default=0, help="use only the first N corpus scenes (0: all)")
    ap.add_argument("--pool-clips", type=int, default=6, help="clips for the serial vs pool comparison")
    ap.add_argument("--fps-sample", type=float, default=5.0)
    ap.add_argument("--profiles", nargs="+", default=["accurate", "fast"])
    ap.add_argument("--asd-backends", nargs="+", default=["light_asd", "motion_corr"])
    ap.add_argument("--out", type=Path, help=f"results file (default {OUT.relative_to(REPO)})")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--from-json", action="store_true", help="re-render the README section from the results file only")
    args = ap.parse_args()
    if args.quick:
        args.scenes, args.pool_clips = args.scenes or 4, min(args.pool_clips, 2)
    args.out = args.out or (QUICK_OUT if args.quick else OUT)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}

    if not args.from_json:
        import torch

        torch.set_num_threads(1)
        parts = parts_of(args.only)
        if args.quick and not args.only:
            parts.remove("sensitivity")
        results["machine"] = {"cpus": os.cpu_count(), "arch": platform.machine(), "python": platform.python_version(),
                              "threads": 1}
        run_parts(args, parts, results)
    if not (args.no_readme or args.quick):
        section = render(results)
        print(section)
        print(f"wrote the Perception section of {replace_section('Perception', section)}")


if __name__ == "__main__":
    main()
