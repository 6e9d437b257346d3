"""Render one planned item (meeting, video, interview clip, sitcom dialogue) into its source's layout.

Every item is scripted and mixed first (``dialogue``), then drawn (``render``),
then written in its dataset's format (``writers``).  The returned manifest
entries carry the ground truth in seconds from the start of the media file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infra.corpus import writers
from infra.corpus.dialogue import SceneAudio, Turn, build_scene, overlap_ratio
from infra.corpus.faces import FACE_SOURCES, Face
from infra.corpus.identities import Identity
from infra.corpus.media import FPS, HEIGHT, WIDTH, write_m4a, write_mp4, write_wav
from infra.corpus.plan import Item
from infra.corpus.render import SceneRenderer
from infra.corpus.speech import SR, frame_envelope


@dataclass
class Built:
    scenes: list[dict]
    files: list[str]
    friends_dialogue: list[dict] | None = None  # this dialogue's turns for test-metadata.json


class Context:
    def __init__(self, out: Path, seed: int, identities: list[Identity]):
        self.out, self.seed = out, seed
        self.ids = {i.id: i for i in identities}
        self._faces: dict[str, Face] = {}

    def face(self, ident: Identity) -> Face:
        key = (ident.face, ident.face_variant)
        if key not in self._faces:
            self._faces[key] = Face(ident.face, ident.face_variant)
        return self._faces[key]

    def path(self, rel: str) -> Path:
        return self.out / rel


def _round(v: float) -> float:
    return round(float(v), 4)


def _norm_box(b) -> list[float]:
    x1, y1, x2, y2 = b
    return [_round(min(max(x1 / WIDTH, 0), 1)), _round(min(max(y1 / HEIGHT, 0), 1)),
            _round(min(max(x2 / WIDTH, 0), 1)), _round(min(max(y2 / HEIGHT, 0), 1))]


def _concat(parts: list[SceneAudio], speakers: list[Identity]):
    """Back-to-back scenes on one timeline (AMI meetings): tracks, mix, turns, part bounds."""
    offsets = np.cumsum([0.0] + [p.duration for p in parts])
    tracks = {s.id: np.concatenate([p.tracks[s.id] for p in parts]) for s in speakers}
    mix = np.concatenate([p.mix for p in parts])
    turns = [[Turn(t.start + off, t.end + off, t.speaker, t.text, t.backchannel) for t in p.turns]
             for p, off in zip(parts, offsets[:-1], strict=True)]
    return tracks, mix, turns, list(zip(offsets[:-1], offsets[1:], strict=True))


def _renderer(ctx: Context, rng, speakers: list[Identity], tracks, n_frames: int) -> SceneRenderer:
    openings = {s.id: frame_envelope(tracks[s.id], n_frames, FPS) for s in speakers}
    faces = {s.id: ctx.face(s) for s in speakers}
    return SceneRenderer(rng, faces, openings, order=[s.id for s in speakers])


def _face_tracks(r: SceneRenderer, start: float, end: float, labels: dict[str, str]) -> list[dict]:
    """Per-identity face boxes at 1 Hz (normalized), plus the mouth region relative to the face box."""
    out = []
    times = np.arange(np.ceil(start), end, 1.0)
    for k, p in enumerate(r.placements):
        fb = p.haar_box
        mb = p.mouth_box
        fw, fh = fb[2] - fb[0], fb[3] - fb[1]
        out.append({
            "identity": p.identity, "track_id": k, "label": labels.get(p.identity, p.identity),
            "tile_px": p.size, "face_px": [_round(fw), _round(fh)],
            "mouth_in_face": [_round((mb[0] - fb[0]) / fw), _round((mb[1] - fb[1]) / fh),
                              _round((mb[2] - fb[0]) / fw), _round((mb[3] - fb[1]) / fh)],
            "boxes": [[_round(t)] + _norm_box(r.face_box(p, t)) for t in times],
        })
    return out


def _scene(item: Item, part: int, start: float, end: float, turns: list[Turn], speakers, labels,
           media: dict, faces: list[dict] | None) -> dict:
    return {
        "scene_id": f"{item.source}/{item.key}#{item.extra.get('dialogue', part)}",
        "source": item.source, "genre": item.genre, "item": item.index,
        "media": media, "start": _round(start), "end": _round(end), "duration": _round(end - start),
        "speakers": [{"identity": s.id, "name": s.name, "voice": s.voice.describe(), "label": labels[s.id],
                      "principal": s.id == item.principal} for s in speakers],
        "turns": [t.to_json() for t in turns],
        "overlap_ratio": _round(overlap_ratio(turns)),
        "num_speakers": len(speakers), "num_visible": len(faces or []),
        "faces": faces or [],
    }


def build_item(ctx: Context, item: Item) -> Built:
    rng = np.random.default_rng([ctx.seed, item.index])
    speakers = [ctx.ids[s] for s in item.speakers]
    overlap = item.source != "friends"
    parts = [build_scene(rng, speakers, item.genre, target, overlap=overlap, principal=item.principal)
             for target in item.targets]
    tracks, mix, part_turns, bounds = _concat(parts, speakers)
    n_frames = int(round(len(mix) / SR * FPS))
    mix = np.pad(mix, (0, max(0, n_frames * SR // FPS - len(mix))))  # audio covers the last frame
    build = {"ami": _ami, "ava": _ava, "voxceleb2": _vox, "friends": _friends, "youtube": _youtube}[item.source]
    return build(ctx, rng, item, speakers, tracks, mix, part_turns, bounds, n_frames)


def _ami(ctx, rng, item, speakers, tracks, mix, part_turns, bounds, n_frames) -> Built:
    m = item.key
    wav = f"ami/amicorpus/{m}/audio/{m}.Mix-Headset.wav"
    write_wav(ctx.path(wav), mix, SR)
    files = [wav]
    labels = {s.id: s.ami_id for s in speakers}
    all_turns = [t for turns in part_turns for t in turns]
    rttm, uem = f"ami/rttm/{m}.rttm", f"ami/uem/{m}.uem"
    writers.write_rttm(ctx.path(rttm), m, [(t.start, t.end, labels[t.speaker]) for t in all_turns])
    writers.write_uem(ctx.path(uem), m, 0.0, len(mix) / SR)
    files += [rttm, uem]
    media = {"audio": wav, "rttm": rttm, "uem": uem, "video": None}
    r = None
    if item.video:
        video = f"ami/amicorpus/{m}/video/{m}.Closeup.mp4"
        r = _renderer(ctx, rng, speakers, tracks, n_frames)
        write_mp4(ctx.path(video), r.frames(0, n_frames), mix, SR)
        files.append(video)
        media["video"] = video
    scenes = [_scene(item, k, a, b, turns, speakers, labels, media,
                     _face_tracks(r, a, b, labels) if r else None)
              for k, ((a, b), turns) in enumerate(zip(bounds, part_turns, strict=True))]
    return Built(scenes, files)


def _ava(ctx, rng, item, speakers, tracks, mix, part_turns, bounds, n_frames) -> Built:
    vid = item.key
    video, csv = f"ava/videos/{vid}.mp4", f"ava/csv/{vid}-activespeaker.csv"
    r = _renderer(ctx, rng, speakers, tracks, n_frames)
    write_mp4(ctx.path(video), r.frames(0, n_frames), mix, SR)
    duration = n_frames / FPS
    entity = {p.identity: f"{vid}_0000_{int(np.ceil(duration)):04d}:{k + 1}" for k, p in enumerate(r.placements)}
    turns = part_turns[0]
    rows = []
    # Annotated at 10 Hz like the real CSVs' dense sampling; a face is SPEAKING_AUDIBLE
    # while one of its own turns covers the timestamp.
    for step in range(int(duration * 10)):
        t = step / 10
        for p in r.placements:
            speaking = any(x.speaker == p.identity and x.start <= t < x.end for x in turns)
            x1, y1, x2, y2 = _norm_box(r.face_box(p, t))
            rows.append((vid, t, x1, y1, x2, y2, "SPEAKING_AUDIBLE" if speaking else "NOT_SPEAKING", entity[p.identity]))
    writers.write_ava_csv(ctx.path(csv), rows)
    labels = entity
    media = {"video": video, "csv": csv}
    a, b = bounds[0]
    return Built([_scene(item, 0, a, b, turns, speakers, labels, media, _face_tracks(r, a, b, labels))],
                 [video, csv])


def _vox(ctx, rng, item, speakers, tracks, mix, part_turns, bounds, n_frames) -> Built:
    video, audio = f"voxceleb2/dev/mp4/{item.key}.mp4", f"voxceleb2/dev/aac/{item.key}.m4a"
    r = _renderer(ctx, rng, speakers, tracks, n_frames)
    write_mp4(ctx.path(video), r.frames(0, n_frames), mix, SR)
    write_m4a(ctx.path(audio), mix, SR)
    labels = {s.id: s.vox_id for s in speakers}
    a, b = bounds[0]
    scene = _scene(item, 0, a, b, part_turns[0], speakers, labels, {"video": video, "audio": audio},
                   _face_tracks(r, a, b, labels))
    return Built([scene], [video, audio])


def _friends(ctx, rng, item, speakers, tracks, mix, part_turns, bounds, n_frames) -> Built:
    """One mp4 per turn, cut at the middle of the gaps (frame-aligned), as Friends-MMC ships them."""
    ep, d = item.key, item.extra["dialogue"]
    turns = part_turns[0]
    r = _renderer(ctx, rng, speakers, tracks, n_frames)
    cuts = [0] + [int(round((turns[i - 1].end + turns[i].start) / 2 * FPS)) for i in range(1, len(turns))] + [n_frames]
    names = {s.id: s.name for s in speakers}
    ep_offset = item.extra["episode_offset"]
    spf = SR // FPS
    clips, meta, files = [], [], []
    for i, turn in enumerate(turns):
        rel = f"{ep}/{d}_{i}.mp4"
        path = f"friends_mmc/{rel}"
        write_mp4(ctx.path(path), r.frames(cuts[i], cuts[i + 1]), mix[cuts[i] * spf:cuts[i + 1] * spf], SR)
        files.append(path)
        a, b = cuts[i] / FPS, cuts[i + 1] / FPS
        clips.append({"path": path, "scene_start": _round(a), "scene_end": _round(b), "turn": i})
        mid = (turn.start + turn.end) / 2
        meta.append({
            "frame": f"{ep}-{int(round((ep_offset + mid) * FPS))}",
            "video": rel,
            "speaker": names[turn.speaker],
            "content": turn.text,
            "faces": [[writers.friends_box(_norm_box(r.face_box(p, mid))), names[p.identity]] for p in r.placements],
        })
    a, b = bounds[0]
    media = {"clips": clips, "metadata": "friends_mmc/test-metadata.json", "episode_offset": ep_offset,
             "time_base": "scene: seconds from the start of clip 0; clip k starts at clips[k].scene_start"}
    scene = _scene(item, d, a, b, turns, speakers, names, media, _face_tracks(r, a, b, names))
    for t, c in zip(scene["turns"], clips, strict=True):
        t.update(clip=c["path"], clip_start=_round(t["start"] - c["scene_start"]),
                 clip_end=_round(t["end"] - c["scene_start"]))
    return Built([scene], files, friends_dialogue=meta)


def _youtube(ctx, rng, item, speakers, tracks, mix, part_turns, bounds, n_frames) -> Built:
    vid = item.key
    video = f"youtube/{vid}.mp4"
    r = _renderer(ctx, rng, speakers, tracks, n_frames)
    write_mp4(ctx.path(video), r.frames(0, n_frames), mix, SR)
    files = [video]
    labels = {s.id: f"spk{k}" for k, s in enumerate(speakers)}
    media = {"video": video, "sidecar": None}
    if item.sidecar:
        sidecar = f"youtube/{vid}.json"
        writers.write_json(ctx.path(sidecar), {
            "video_id": vid,
            "title": f"Panel talk {item.index}: " + " and ".join(s.name for s in speakers),
            "speakers": [{"id": labels[s.id], "name": s.name} for s in speakers],
            "turns": [{"start": _round(t.start), "end": _round(t.end), "speaker": labels[t.speaker], "text": t.text}
                      for t in part_turns[0]],
        })
        files.append(sidecar)
        media["sidecar"] = sidecar
    a, b = bounds[0]
    return Built([_scene(item, 0, a, b, part_turns[0], speakers, labels, media, _face_tracks(r, a, b, labels))],
                 files)


def identity_entry(ident: Identity) -> dict:
    d = ident.to_json()
    src = FACE_SOURCES[ident.face]
    d["face_source"] = {"package": src.package, "file": src.relpath}
    return d
