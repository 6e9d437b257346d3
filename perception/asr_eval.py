"""ASR accuracy and speed on the corpus scenes, for several ASR configs over the same diarization.

VAD and diarization run once per scene (with the base config); each ASR variant then transcribes
the same rows, so WER differences are the ASR's alone. WER is corpus-level (``perception.scoring.wer``,
lower-cased, punctuation stripped) against the manifest turns' text, scenes as
``perception.corpus_eval.load_scenes`` selects them (Friends-MMC left out). RTF is ASR seconds per
media second in this process, at ``perception.torch_threads`` threads (1: per core): ``rtf`` from
wall time, ``cpu_rtf`` from the process's CPU time, which a busy shared machine inflates far less.
``utterance_scores`` does the same for single-speaker files (real speech), WER where references exist.

    from perception.asr_eval import compare_asr
    compare_asr("data/corpus", {"whisper base": {"asr": "faster_whisper"}, "pocketsphinx": {"asr": "pocketsphinx"}})
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from infra.config import to_dict
from perception import corpus_eval as ce
from perception.actors import as_config, get_stage, run_all, set_threads
from perception.scoring import wer


def diarized_rows(root: str | Path, cfg: dict | None = None) -> list[tuple[dict, dict]]:
    """(scene, row with pred_speech and pred_turns) for every corpus scene with one file span."""
    c = as_config(cfg)
    out = []
    for sc in ce.load_scenes(root):
        row = ce.scene_row(sc)
        row.update(run_all(row, c, stages=("vad", "diarization")))
        out.append((sc, row))
    return out


def asr_scores(rows: list[tuple[dict, dict]], cfg: dict | None = None) -> dict[str, Any]:
    """WER, media seconds, ASR seconds (model loaded and warmed first) and RTF of one ASR config on ``rows``."""
    c = as_config(cfg)
    stage = get_stage("asr", c)
    stage.run(rows[0][1])  # warm-up: first-call costs stay out of the timing
    refs, hyps, media, spent, cpu = [], [], 0.0, 0.0, 0.0
    for sc, row in rows:
        t0, c0 = time.perf_counter(), time.process_time()
        segs = stage.run(row)["pred_transcript"]
        spent, cpu = spent + time.perf_counter() - t0, cpu + time.process_time() - c0
        media += float(sc["end"]) - float(sc["start"])
        refs.append(" ".join(t["text"] for t in sc["turns"]))
        hyps.append(" ".join(s["text"] for s in segs if s["text"]))
    return _scores(c, refs, hyps, media, spent, cpu)


def _scores(c, refs: list[str], hyps: list[str], media: float, spent: float, cpu: float) -> dict[str, Any]:
    return {"backend": c.backend("asr"), "wer": wer(refs, hyps) if refs else None, "n": len(hyps), "media_s": media,
            "asr_s": spent, "cpu_s": cpu, "rtf": spent / media, "cpu_rtf": cpu / media, "threads": c.torch_threads}


def utterance_scores(paths: list[str | Path], refs: dict[str, str] | None = None, cfg: dict | None = None) -> dict[str, Any]:
    """RTF of the configured ASR on single-speaker audio files (each one turn), and WER over the files
    whose stem has a reference in ``refs``; ``hypotheses`` maps each stem to its transcript."""
    import soundfile as sf

    from perception.asr import ASR_BACKENDS

    c = as_config(cfg)
    set_threads(c)  # as the stages do: every thread pool at perception.torch_threads
    asr = ASR_BACKENDS.create(c.backend("asr"), c)
    media = spent = cpu = 0.0
    hyps: dict[str, str] = {}
    for i, p in enumerate(paths):
        audio, sr = sf.read(str(p), dtype="float32")
        turns = [{"start": 0.0, "end": len(audio) / sr, "speaker": "A", "text": ""}]
        if i == 0:
            asr(audio, sr, turns=turns)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        segs = asr(audio, sr, turns=turns)
        spent, cpu = spent + time.perf_counter() - t0, cpu + time.process_time() - c0
        media += len(audio) / sr
        hyps[Path(p).stem] = " ".join(s["text"] for s in segs if s["text"])
    known = sorted(k for k in hyps if refs and k in refs)
    out = _scores(c, [refs[k] for k in known], [hyps[k] for k in known], media, spent, cpu)
    return {**out, "n": len(paths), "wer_n": len(known), "hypotheses": hyps}


def compare_asr(root: str | Path, variants: dict[str, dict], base: dict | None = None) -> dict[str, dict[str, Any]]:
    """``asr_scores`` per named variant (perception overrides merged over ``base``), one diarization for all."""
    base_cfg = to_dict(as_config(base))
    rows = diarized_rows(root, base_cfg)
    return {name: asr_scores(rows, _merge(base_cfg, over)) for name, over in variants.items()}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out
