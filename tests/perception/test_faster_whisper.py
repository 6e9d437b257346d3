"""The default ASR: Whisper base rebuilt from its two pip packages, run through faster-whisper.

The joined model is built once per session into a temporary weights cache (about 1 s); the
backend is loaded once (about 1 s) and transcribes real flite speech: the synthesized 3-speaker
dialogue and one corpus scene.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from infra.config import ConfigError, from_dict
from perception import corpus_eval as ce
from perception import embedded_whisper as ew
from perception.actors import as_config
from perception.asr import ASR_BACKENDS
from perception.config import PROFILES, PerceptionConfig
from perception.media_io import load_audio
from perception.scoring import wer

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("weights_cache")


@pytest.fixture(scope="module")
def fw_cfg(cache):
    return as_config({"weights_cache": str(cache)})


@pytest.fixture(scope="module")
def fw(fw_cfg):
    return ASR_BACKENDS.create("faster_whisper", fw_cfg)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rewrite(path: Path, data: bytes) -> None:
    # a new file, as a failed copy or another tool leaves it (new inode and mtime)
    tmp = path.with_name(path.name + ".test")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- the embedded model folder --------------------------------------------------------------------


def test_folder_is_joined_once_verified_and_rebuilt_when_corrupt(cache):
    folder = Path(ew.whisper_base_dir(str(cache)))
    assert folder == cache / ew.FOLDER
    model = folder / "model.bin"
    assert sorted(p.name for p in folder.iterdir()) == sorted(ew.FILES)  # no temporary files left behind
    assert model.stat().st_size == ew.MODEL_SIZE == 145_217_532 and _sha(model) == ew.MODEL_SHA256

    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert ew.whisper_base_dir(str(cache)) == str(folder)
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()} == before  # idempotent

    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit-pattern, same size
    _rewrite(model, bytes(data))
    tok = folder / "tokenizer.json"
    _rewrite(tok, tok.read_bytes()[:1000])  # truncated side file
    ew.whisper_base_dir(str(cache))
    assert _sha(model) == ew.MODEL_SHA256 and _sha(tok) == ew.SIDE_FILES["tokenizer.json"].sha256


def test_processes_starting_together_build_the_folder_once(tmp_path):
    """Two actors' first use at the same moment: one joins, the other waits and reuses its file."""
    import subprocess
    import sys

    code = ("import os, sys; from perception.embedded_whisper import whisper_base_dir; "
            "d = whisper_base_dir(sys.argv[1]); print(os.stat(os.path.join(d, 'model.bin')).st_ino)")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              cwd=root, env=env) for _ in range(2)]
    inodes = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    model = tmp_path / ew.FOLDER / "model.bin"
    assert inodes[0] == inodes[1] == str(model.stat().st_ino)  # a second join would have replaced the file
    assert _sha(model) == ew.MODEL_SHA256
    assert sorted(p.name for p in (tmp_path / ew.FOLDER).iterdir()) == sorted(ew.FILES)


def _fake_package(root: Path, name: str, files: dict[str, bytes]) -> None:
    pkg = root / name
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for rel, data in files.items():
        (pkg / rel).write_bytes(data)


def test_missing_or_corrupt_parts_name_package_and_file(tmp_path, monkeypatch):
    good = ew.MODEL_PARTS[0]
    _fake_package(tmp_path, "amuse_fake_part", {"data/model.bin.part1": b"not the model"})
    monkeypatch.syspath_prepend(str(tmp_path))
    corrupt = ew.Piece("amuse-fake-part", "amuse_fake_part", good.resource, good.size, good.sha256)
    with pytest.raises(ew.EmbeddedWeightsError, match=r"data/model\.bin\.part1 of package amuse-fake-part .*corrupt"):
        ew.build_folder(tmp_path / "out", parts=(corrupt, ew.MODEL_PARTS[1]), side_files={})
    assert not (tmp_path / "out" / "model.bin").exists()
    assert not list((tmp_path / "out").glob("*.tmp-*"))  # the temporary file is removed

    absent = ew.Piece("amuse-not-installed", "amuse_not_installed", good.resource, good.size, good.sha256)
    with pytest.raises(ew.EmbeddedWeightsError, match=r"package amuse-not-installed .*not installed"):
        ew.build_folder(tmp_path / "out", parts=(absent,), side_files={})
    no_file = ew.Piece("amuse-fake-part", "amuse_fake_part", "data/model.bin.part9", good.size, good.sha256)
    with pytest.raises(ew.EmbeddedWeightsError, match=r"data/model\.bin\.part9 is missing from package amuse-fake-part"):
        ew.build_folder(tmp_path / "out", parts=(no_file,), side_files={})


# --- profiles -------------------------------------------------------------------------------------


def test_profile_resolution():
    assert PerceptionConfig().asr is None and PerceptionConfig().profile == "accurate"
    assert PerceptionConfig().backend("asr") == "faster_whisper" == PROFILES["accurate"]["asr"]
    assert from_dict(PerceptionConfig, {"profile": "fast"}).backend("asr") == "pocketsphinx"
    assert from_dict(PerceptionConfig, {"profile": "fast", "asr": "whisper"}).backend("asr") == "whisper"  # explicit wins
    assert from_dict(PerceptionConfig, {"asr": "pocketsphinx"}).backend("asr") == "pocketsphinx"
    assert PerceptionConfig().backend("vad") == "silero"  # capabilities a profile leaves alone keep their key
    with pytest.raises(ConfigError, match=r"perception\.profile: unknown profile 'precise' \(known: accurate, fast\)"):
        from_dict(PerceptionConfig, {"profile": "precise"}, prefix="perception")
    with pytest.raises(ConfigError, match=r"perception\.profile: unknown profile"):
        PerceptionConfig(profile="precise").backend("asr")


def test_asr_stage_builds_the_profiles_backend():
    from perception.asr import PocketsphinxASR
    from perception.stages import AsrStage

    assert isinstance(AsrStage(as_config({"profile": "fast"})).backend, PocketsphinxASR)


# --- transcription --------------------------------------------------------------------------------


def test_flite_dialogue_words_follow_the_turns(three_speaker_clip, fw, fw_cfg):
    """Per-turn text against per-turn references: a word timed into the wrong turn counts as an error."""
    d = three_speaker_clip["dialogue"]
    turns = [{"start": s, "end": e, "speaker": spk, "text": ""} for s, e, spk in d.turns]
    segs = fw(d.audio, 16000, turns=turns)
    assert [s["speaker"] for s in segs] == [t["speaker"] for t in turns]
    # Whisper's word times (cross-attention DTW) are good to about a tenth of a second, except that a
    # window's first word tends to start at the window's start (0.0 here, for a turn at 0.5 s).
    tol = 0.25
    for seg in segs:
        assert seg["words"], seg
        starts = [w["start"] for w in seg["words"]]
        assert starts == sorted(starts)
        for w in seg["words"]:
            assert w["start"] <= w["end"] and w["end"] > seg["start"] and w["start"] < seg["end"], (w, seg)
            assert seg["start"] - tol <= (w["start"] + w["end"]) / 2 <= seg["end"] + tol, (w, seg)
    score = wer([t for _, t in d.texts], [s["text"] for s in segs])
    ps = ASR_BACKENDS.create("pocketsphinx", fw_cfg)(d.audio, 16000, turns=turns)
    ps_score = wer([t for _, t in d.texts], [s["text"] for s in ps])
    print(f"flite dialogue per-turn WER: faster_whisper {score:.3f}, pocketsphinx {ps_score:.3f}")
    assert score <= 0.08 < ps_score  # the bound fails pocketsphinx-level quality on the same audio


def test_speech_only_maps_word_times_back_to_the_clip(three_speaker_clip, fw_cfg):
    """speech_only joins the padded turns (cutting the gaps between them) before decoding; the words
    must come back at clip times, inside their own turns, with the same text quality."""
    from infra.config import to_dict

    cfg = as_config({**to_dict(fw_cfg), "faster_whisper": {"speech_only": True, "span_pad_s": 0.1}})
    d = three_speaker_clip["dialogue"]
    turns = [{"start": s, "end": e, "speaker": spk, "text": ""} for s, e, spk in d.turns]
    segs = ASR_BACKENDS.create("faster_whisper", cfg)(d.audio, 16000, turns=turns)
    for seg in segs:
        assert seg["words"]
        mids = [(w["start"] + w["end"]) / 2 for w in seg["words"]]
        assert all(seg["start"] - 0.1 <= m <= seg["end"] + 0.1 for m in mids), seg  # a shift by a cut gap fails
    assert wer([t for _, t in d.texts], [s["text"] for s in segs]) <= 0.08


def test_corpus_scene_with_overlaps_and_no_turns(fw, fw_cfg):
    """A multi-party corpus scene (overlapping turns, backchannels) decoded with its reference turns,
    then without turns (Whisper's own segments)."""
    if not (CORPUS / "manifest.json").is_file():
        pytest.skip("data/corpus is missing (make corpus)")
    sc = next(s for s in ce.load_scenes(CORPUS) if s["source"] == "ami")
    row = ce.scene_row(sc)
    audio = load_audio(row, 16000)
    turns = [{"start": s - sc["start"], "end": e - sc["start"], "speaker": spk, "text": ""}
             for s, e, spk in ce.gt_turns(sc)]
    ref = " ".join(t["text"] for t in sc["turns"])
    segs = fw(audio, 16000, turns=turns)
    assert len(segs) == len(turns)
    words = [w for s in segs for w in s["words"]]
    assert words and all(0 <= w["start"] <= w["end"] <= len(audio) / 16000 + 0.01 for w in words)
    score = wer([ref], [" ".join(s["text"] for s in segs)])
    whole = fw(audio, 16000)
    assert whole and all(s["speaker"] == "" for s in whole)
    whole_score = wer([ref], [" ".join(s["text"] for s in whole)])
    print(f"{sc['scene_id']} WER with reference turns {score:.3f}, whole clip without turns {whole_score:.3f}")
    assert score <= 0.30 and whole_score <= 0.30


def test_model_dir_loads_another_folder_through_weights_dir(three_speaker_clip, cache, tmp_path):
    """A configured CTranslate2 folder (here the built one, relative to weights_dir) instead of the embedded one."""
    from perception.registry import BackendUnavailable

    ew.whisper_base_dir(str(cache))
    cfg = as_config({"weights_dir": str(cache), "faster_whisper": {"model_dir": ew.FOLDER, "beam_size": 1}})
    d = three_speaker_clip["dialogue"]
    segs = ASR_BACKENDS.create("faster_whisper", cfg)(d.audio, 16000, turns=[
        {"start": s, "end": e, "speaker": spk} for s, e, spk in d.turns])
    assert wer([t for _, t in d.texts], [s["text"] for s in segs]) <= 0.08
    bad = as_config({"faster_whisper": {"model_dir": str(tmp_path)}})
    with pytest.raises(BackendUnavailable, match=r"model\.bin .*perception\.faster_whisper\.model_dir"):
        ASR_BACKENDS.create("faster_whisper", bad)


def test_silence_gives_empty_segments(fw):
    import numpy as np

    turns = [{"start": 0.5, "end": 1.5, "speaker": "A", "text": ""}]
    assert fw(np.zeros(16000 * 2, np.float32), 16000, turns=[]) == []
    segs = fw(np.zeros(16000 * 2, np.float32), 16000, turns=turns)
    assert [s["speaker"] for s in segs] == ["A"]
