"""Multi-speaker conversations mixed from real LibriSpeech utterances, with exact references.

Each conversation strings together utterances of 2-4 real speakers: natural gaps (0.1-1.5 s), some
overlapped hand-overs, per-speaker level differences, a room response per speaker position
(exponentially decaying noise, RT60 drawn per room) and a noise floor. Because every utterance is
placed by the builder, its speech span (the utterance trimmed of its leading and trailing
silence) is known exactly, so the RTTM-style reference is exact up to the pauses inside an
utterance, which stay labelled as speech, as in forced-alignment references with pause merging.

Two disjoint splits keep tuning honest: ``tune`` uses speakers the ``check`` split never hears,
so a figure on ``check`` is measured on voices the tuning never saw.

    python -m perception.realdev.conversations      # build both splits (cached) and print a summary
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from perception.realdev import cache_dir, require_root

SR = 16000
BUILDER_VERSION = 7  # bump when the mixing changes: the cache key includes it


@dataclass(frozen=True)
class ConversationPlan:
    """How one split's conversations are drawn. Every field enters the cache key."""

    split: str = "tune"
    n_conversations: int = 12
    min_speakers: int = 2
    max_speakers: int = 4
    target_s: float = 40.0
    max_turn_s: float = 7.0
    gap_s: tuple[float, float] = (0.1, 1.5)
    overlap_prob: float = 0.2
    overlap_s: tuple[float, float] = (0.2, 1.0)
    level_db: tuple[float, float] = (-8.0, 0.0)
    rt60_s: tuple[float, float] = (0.2, 0.7)
    direct_to_reverb_db: tuple[float, float] = (-3.0, 6.0)
    snr_db: tuple[float, float] = (12.0, 30.0)
    output_dbfs: tuple[float, float] = (-55.0, -20.0)
    seed: int = 0

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "v": BUILDER_VERSION}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def read_flac(path: Path) -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="float32", always_2d=False)
    if sr != SR:
        raise ValueError(f"{path}: sample rate {sr}, expected {SR}")
    return x if x.ndim == 1 else x.mean(1)


def speakers(root: Path) -> dict[str, list[Path]]:
    """Speaker id -> utterance files, from both LibriSpeech folders, sorted for determinism."""
    out: dict[str, list[Path]] = {}
    for part in ("librispeech_test-other", "librispeech_train-clean"):
        for d in sorted((root / "speech" / part).iterdir()):
            if d.is_dir():
                out.setdefault(d.name, []).extend(sorted(d.glob("*.flac")))
    return out


def split_speakers(spk: dict[str, list[Path]], split: str) -> dict[str, list[Path]]:
    """Half of the multi-utterance speakers and half of the one-utterance ones per split, disjoint."""
    many = sorted(s for s, f in spk.items() if len(f) > 1)
    one = sorted(s for s, f in spk.items() if len(f) == 1)
    pick = {"tune": lambda xs: xs[0::2], "check": lambda xs: xs[1::2]}
    if split not in pick:
        raise ValueError(f"conversation split {split!r}: known splits are tune and check")
    return {s: spk[s] for s in pick[split](many) + pick[split](one)}


def speech_regions(x: np.ndarray, model, min_pause_s: float = 0.3, min_speech_s: float = 0.1) -> list[tuple[int, int]]:
    """Speech regions (sample ranges) of a clean, dry utterance: silero-vad on the source itself.

    The reference of a simulated mixture comes from its clean sources, as in simulated-conversation
    corpora without word alignments: the LibriSpeech files carry up to half a second of silence
    at each end and sentence pauses of several seconds, which a whole-file reference would count
    as speech, and their background noise (test-other) defeats a plain energy threshold (it
    disagreed with this on 16% of the speech time). No padding; pauses shorter than
    ``min_pause_s`` stay speech. What the system under test hears is different audio: the
    reverberant, noisy, level-shifted mixture.
    """
    import torch
    from silero_vad import get_speech_timestamps

    model.reset_states()
    stamps = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(x)), model, sampling_rate=SR,
                                   min_silence_duration_ms=int(min_pause_s * 1000),
                                   min_speech_duration_ms=int(min_speech_s * 1000), speech_pad_ms=0)
    return [(int(t["start"]), int(t["end"])) for t in stamps]


def room_response(rng: np.random.Generator, rt60: float, drr_db: float) -> np.ndarray:
    """A synthetic room impulse response: a direct path plus exponentially decaying noise (RT60)."""
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    tail = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)
    tail[: int(0.002 * SR)] = 0.0  # the first reflections arrive after the direct sound
    tail *= np.sqrt(10 ** (-drr_db / 10) / max(np.sum(tail**2), 1e-12))
    tail[0] += 1.0
    return tail.astype(np.float32)


def pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
    x = np.fft.irfft(spec, n)
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def _pieces(regions: list[tuple[int, int]], max_s: float) -> list[list[tuple[int, int]]]:
    """An utterance's speech regions grouped into turns of at most ``max_s``, cut at its pauses.

    A region longer than ``max_s`` stays whole: read speech has no pause to cut it at.
    """
    limit = int(max_s * SR)
    out: list[list[tuple[int, int]]] = [[]]
    for a, b in regions:
        if out[-1] and b - out[-1][0][0] > limit:
            out.append([])
        out[-1].append((a, b))
    return out


def build_conversation(rng: np.random.Generator, pool: dict[str, list[Path]], plan: ConversationPlan,
                       conv_id: str) -> tuple[np.ndarray, list[dict], dict]:
    """(mixture, reference turns [{start,end,speaker}], info) for one conversation."""
    from silero_vad import load_silero_vad

    vad = load_silero_vad(onnx=True)
    names = sorted(pool)
    n_spk = int(rng.integers(plan.min_speakers, plan.max_speakers + 1))
    multi = [s for s in names if len(pool[s]) > 1]
    # At least two returning voices, so the same speaker comes back, as in a real conversation.
    chosen = list(rng.choice(multi, size=min(2, len(multi)), replace=False))
    rest = [s for s in names if s not in chosen]
    chosen += list(rng.choice(rest, size=n_spk - len(chosen), replace=False))
    utts = {s: [p for p in rng.permutation(pool[s])] for s in chosen}
    level = {s: _uniform(rng, plan.level_db) for s in chosen}
    rt60 = _uniform(rng, plan.rt60_s)
    rir = {s: room_response(rng, rt60, _uniform(rng, plan.direct_to_reverb_db)) for s in chosen}

    queue: list[tuple[str, np.ndarray, list[tuple[int, int]]]] = []
    order = list(chosen)
    t_total = 0.0
    prev = None
    spoken: set[str] = set()
    while t_total < plan.target_s and any(utts.values()):
        unheard = [s for s in order if s not in spoken and utts[s]]
        cands = unheard or [s for s in order if utts[s] and s != prev] or [s for s in order if utts[s]]
        spk = str(rng.choice(cands))
        x = read_flac(utts[spk].pop(0))
        for regions in _pieces(speech_regions(x, vad), plan.max_turn_s):
            if not regions:
                continue
            a, b = regions[0][0], regions[-1][1]
            queue.append((spk, x[a:b], [(r0 - a, r1 - a) for r0, r1 in regions]))
            t_total += (b - a) / SR
        prev = spk
        spoken.add(spk)
    # Interleave: consecutive pieces of one utterance stay together with short pauses.
    turns: list[dict] = []
    dry = {s: np.zeros(0, np.float32) for s in chosen}
    t = 0.5
    for i, (spk, piece, regions) in enumerate(queue):
        if i:
            same = queue[i - 1][0] == spk
            if same:
                t += _uniform(rng, (0.15, 0.5))
            elif rng.random() < plan.overlap_prob:
                t -= min(_uniform(rng, plan.overlap_s), 0.5 * len(piece) / SR, 0.5 * len(queue[i - 1][1]) / SR)
            else:
                t += _uniform(rng, plan.gap_s)
        start = int(round(t * SR))
        buf = dry[spk]
        if len(buf) < start + len(piece):
            buf = np.pad(buf, (0, start + len(piece) - len(buf)))
        buf[start : start + len(piece)] += piece * 10 ** (level[spk] / 20)
        dry[spk] = buf
        turns += [{"start": round((start + r0) / SR, 3), "end": round((start + r1) / SR, 3), "speaker": spk}
                  for r0, r1 in regions]
        t = (start + len(piece)) / SR
    n = max(len(b) for b in dry.values()) + int(0.5 * SR)
    mix = np.zeros(n, np.float32)
    from scipy.signal import fftconvolve

    for s in chosen:
        wet = fftconvolve(dry[s], rir[s])[:n].astype(np.float32)
        mix[: len(wet)] += wet
    speech_rms = np.sqrt(np.mean(mix[mix != 0] ** 2)) if np.any(mix) else 1.0
    snr = _uniform(rng, plan.snr_db)
    mix += pink_noise(rng, n) * speech_rms * 10 ** (-snr / 20)
    out_db = _uniform(rng, plan.output_dbfs)
    mix *= 10 ** (out_db / 20) / (np.sqrt(np.mean(mix**2)) + 1e-12)
    mix = np.clip(mix, -1.0, 1.0)
    info = {"conversation_id": conv_id, "speakers": sorted({t["speaker"] for t in turns}), "rt60_s": round(rt60, 3), "snr_db": round(snr, 1),
            "output_dbfs": round(out_db, 1), "duration_s": round(n / SR, 3)}
    return mix, sorted(turns, key=lambda r: (r["start"], r["speaker"])), info


def build(plan: ConversationPlan | None = None, root: Path | None = None) -> Path:
    """Build (once) the conversations of ``plan`` into the cache; returns the folder holding manifest.json."""
    from infra.corpus.media import write_wav

    plan = plan or ConversationPlan()
    out = cache_dir("conversations", f"{plan.split}-{plan.key()}")
    manifest = out / "manifest.json"
    if manifest.is_file():
        return out
    root = root or require_root()
    pool = split_speakers(speakers(root), plan.split)
    rng = np.random.default_rng(plan.seed)
    items = []
    for i in range(plan.n_conversations):
        conv_id = f"{plan.split}-{i:02d}"
        mix, turns, info = build_conversation(rng, pool, plan, conv_id)
        write_wav(out / f"{conv_id}.wav", mix, SR)
        items.append({**info, "audio": f"{conv_id}.wav", "turns": turns})
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps({"plan": asdict(plan), "conversations": items}, indent=1))
    tmp.replace(manifest)  # the manifest appears last: a half-built folder is rebuilt, never read
    return out


def load(folder: Path) -> list[dict]:
    """The conversations of a built folder, with absolute audio paths."""
    data = json.loads((folder / "manifest.json").read_text())
    return [dict(c, audio=str(folder / c["audio"])) for c in data["conversations"]]


def main() -> None:
    for split in ("tune", "check"):
        folder = build(ConversationPlan(split=split, seed={"tune": 0, "check": 1}[split]))
        convs = load(folder)
        dur = sum(c["duration_s"] for c in convs)
        spk = [len(c["speakers"]) for c in convs]
        print(f"{split}: {len(convs)} conversations, {dur / 60:.1f} min, speakers per conversation {spk} -> {folder}")


if __name__ == "__main__":
    main()
