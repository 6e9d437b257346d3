"""Active speaker detection on real footage: the talking-head scenes built from ``../shared/data/real``
(real faces, real speech, exact references) and Light-ASD with its published weights.

Tests that need the real folder skip with a message naming it. The scenes are built once (about
10 s) into ``.cache/realdev`` and reused by later sessions; the face stage runs once per session.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from perception.active_speaker import on_grid
from perception.actors import as_config
from perception.realdev import missing_message, real_data_root

# Small on purpose: 4 scenes of 5 s cover 2 and 3 people, still and muted listeners.
SPEC_ARGS = {"n_scenes": 4, "scene_s": 5.0}


def test_on_grid_repeats_and_drops_to_the_nearest_frame():
    for src_fps in (22.13, 25.0, 30.0):
        n = int(3 * src_fps)
        frames = [(i / src_fps + 0.01, np.full((2, 2), i)) for i in range(n)]
        out = list(on_grid(iter(frames), 25.0))
        ks = [k for k, _ in out]
        assert ks == list(range(len(ks))) and abs(len(ks) - 75) <= 1  # every grid slot once, no holes
        for k, f in out:  # each slot holds a decoded frame nearest to its time (ties either way)
            best = min(abs(t - k / 25.0) for t, _ in frames)
            assert abs(frames[int(f[0, 0])][0] - k / 25.0) <= best + 1e-9


@pytest.fixture(scope="session")
def real_root():
    root = real_data_root()
    if root is None:
        pytest.skip(missing_message())
    return root


@pytest.fixture(scope="session")
def th(real_root):
    """The test scenes, their manifest, and face-stage tracks per scene."""
    import json

    from perception.realdev import asd_eval, talking_heads

    spec = talking_heads.TalkingHeadsSpec(**SPEC_ARGS)
    folder = talking_heads.build(spec)
    scenes = talking_heads.load(spec)
    tracks, _ = asd_eval.face_tracks(scenes, as_config(None))
    return SimpleNamespace(spec=spec, scenes=scenes, tracks=tracks,
                           manifest=json.loads((folder / "manifest.json").read_text()))


def test_talking_heads_plan_is_deterministic_and_labels_follow_it(th):
    from perception.realdev import talking_heads

    man = th.manifest
    clips = {name: SimpleNamespace(frames=range(c["frames"]), still=c["still"]) for name, c in man["clips"].items()}
    rng = np.random.default_rng(th.spec.seed)
    fps = talking_heads.FPS
    kinds = set()
    for i, scene in enumerate(th.scenes):
        plan = talking_heads.plan_scene(rng, clips, *th.spec.layout(i), th.spec)
        # The same seed gives the same scene: people, turns and clip positions.
        assert plan["names"] == scene["identities"] and plan["kind"] == scene["kind"]
        assert plan["turns"] == scene["plan"]
        kinds.add((len(plan["names"]), plan["kind"]))
        labels = {(round(t * fps), p): lab == "SPEAKING_AUDIBLE" for t, p, lab in scene["labels"]}
        assert len(labels) == plan["n"] * len(plan["names"])
        for f in range(plan["n"]):
            speaking = [p for p in plan["names"] if labels[f, p]]
            assert len(speaking) <= 1  # turn-taking: never two at once
            for p in speaking:
                # Only the person whose audio plays speaks, and only where the VAD heard speech in their clip.
                assert plan["audible"][p][f]
                t_clip = (plan["src"][p][f] + 0.5) / fps
                assert any(a <= t_clip < b for a, b in man["clips"][p]["speech"])
        # Muted listeners move (their talking video runs on); still ones loop a pause or hold one frame.
        for p in plan["names"]:
            idle = plan["src"][p][~plan["audible"][p]]
            if plan["kind"] == "still":
                assert set(idle.tolist()) <= set(man["clips"][p]["still"])
            else:
                assert len(set(idle.tolist())) > 0.5 * len(idle)
    assert kinds == {(2, "still"), (3, "still"), (2, "muted"), (3, "muted")}
    again = talking_heads.TalkingHeadsSpec(**SPEC_ARGS)
    sources = {name: 1 for name in again.clips}
    assert again.key(sources) == th.spec.key(sources) != dataclasses.replace(again, seed=1).key(sources)


def test_talking_heads_media_match_references(th):
    """The written audio is silent where nobody speaks and loud where someone does; boxes sit in their tiles."""
    from perception.media_io import load_audio

    for scene in th.scenes:
        audio = load_audio({"media_uri": scene["media_uri"], "start_s": 0.0, "end_s": scene["duration_s"]}, 16000)
        n = int(scene["duration_s"] * 25)
        rms = np.array([np.sqrt(np.mean(audio[k * 640 : (k + 1) * 640] ** 2)) for k in range(n)])
        audible = np.zeros(n, dtype=bool)
        for t in scene["plan"]:
            audible[t["start_frame"] : t["end_frame"]] = True
        speaking = np.zeros(n, dtype=bool)
        for t, _, lab in scene["labels"]:
            speaking[round(t * 25)] |= lab == "SPEAKING_AUDIBLE"
        assert rms[~audible].max() < 0.005  # between turns: nothing but codec noise
        assert np.median(rms[speaking]) > 0.02
        for p, (x0, x1) in zip(scene["identities"], scene["tiles"], strict=True):
            boxes = np.array(scene["boxes"][p])[:, 1:]
            assert (boxes[:, 0] >= x0 - 1e-6).all() and (boxes[:, 2] <= x1 + 1e-6).all()
            assert (boxes[:, 2] - boxes[:, 0] > 0.05).all()


def _evaluate(th, backend: str, cfg):
    from perception.realdev import asd_eval

    res = asd_eval.evaluate(backend, th.scenes, th.tracks, cfg)
    print(f"{backend}: {res}")
    assert res["matched_identities"] == "10/10"  # the face stage finds and tracks every person
    return res


def test_light_asd_real_weights_on_talking_heads(th, real_root):
    """Published AVA weights: speakers ranked above still listeners (a random network scores about 0.39 on these
    still-listener scenes, 0.34 overall); muted talking listeners fool it (about 0.5), which is reported, not hidden."""
    pytest.importorskip("python_speech_features", reason="make full installs python_speech_features")
    path = real_root / "weights" / "light_asd" / "pretrain_AVA_CVPR.model"
    if not path.is_file():
        pytest.skip(f"{path} is missing ({missing_message()})")
    res = _evaluate(th, "light_asd", as_config({"weights_dir": str(real_root / "weights")}))
    assert res["by_kind"]["still"]["map"] >= 0.75 and res["by_kind"]["still"]["ap_sklearn"] >= 0.75
    assert res["map"] >= 0.6 and res["accuracy"] > res["always_silent"]


def test_motion_corr_on_talking_heads(th):
    """The embedded backend: a still listener's lips do not move, a speaker's do (muted talkers are beyond it)."""
    res = _evaluate(th, "motion_corr", as_config(None))
    assert res["by_kind"]["still"]["map"] >= 0.85 and res["by_kind"]["still"]["ap_sklearn"] >= 0.85
    assert res["accuracy"] > res["always_silent"]
