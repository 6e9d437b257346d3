"""What the corpus contains: the list of media items per source, with their cast.

Planning draws no audio or video, so it is instant and the full plan exists even
when ``--limit`` renders only its first items; item ``i`` always gets the same
random stream ``(seed, i)`` and therefore the same content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infra.corpus.identities import Identity

SOURCES = ("ami", "ava", "voxceleb2", "friends", "youtube")
FRIENDS_CAST = ("rachel", "ross", "monica", "chandler", "phoebe", "joey")
YT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

# Items per source. AMI meetings hold two scenes each; Friends episodes two dialogues.
COUNTS = {
    "demo": {"ami": 2, "ava": 2, "vox_principals": 2, "vox_clips": (2, 1), "friends": 1, "youtube": 3},
    "large": {"ami": 24, "ava": 60, "vox_principals": 40, "vox_clips": (3,), "friends": 12, "youtube": 60},
}
AMI_MEETINGS = ["ES2004a", "IS1009a", "TS3003a", "EN2002a", "ES2005b", "IS1001c", "TS3004d", "ES2008b"]


@dataclass
class Item:
    index: int
    source: str
    key: str  # meeting id / video id / vox path / episode
    speakers: list[str]  # identity ids, in on-screen order
    genre: str
    targets: list[float]  # wanted length of each scene in the item
    video: bool = True
    principal: str | None = None
    sidecar: bool = True
    extra: dict = field(default_factory=dict)


def youtube_id(rng: np.random.Generator) -> str:
    return "".join(YT_ALPHABET[i] for i in rng.integers(0, len(YT_ALPHABET), 11))


def _pick(rng, pool: list[Identity], n: int, usage: dict[str, int], must: list[Identity] = ()) -> list[Identity]:
    """n identities, favouring the least used, never two sharing a base face in one scene."""
    chosen = list(must)
    while len(chosen) < n:
        faces = {c.face for c in chosen}
        cands = [p for p in pool if p.face not in faces and p not in chosen]
        w = np.array([1.0 / (1 + usage[c.id]) ** 2 for c in cands])
        chosen.append(cands[int(rng.choice(len(cands), p=w / w.sum()))])
    for c in chosen:
        usage[c.id] += 1
    return chosen


def build_plan(size: str, seed: int, pool: list[Identity]) -> list[Item]:
    counts = COUNTS[size]
    rng = np.random.default_rng([seed, 7919])
    usage = {p.id: 0 for p in pool}
    items: list[Item] = []

    def add(**kw) -> Item:
        item = Item(index=len(items), **kw)
        items.append(item)
        return item

    for m in range(counts["ami"]):
        key = AMI_MEETINGS[m] if m < len(AMI_MEETINGS) else f"ES{2100 + m}a"
        spk = _pick(rng, pool, int(rng.integers(3, 5)), usage)
        # Two scenes back to back, so the meeting (50-75 s) must be cut into clips.
        add(source="ami", key=key, speakers=[s.id for s in spk], genre="meeting",
            targets=[float(rng.uniform(24, 32)), float(rng.uniform(24, 32))], video=(m % 4 == 0))
    for _ in range(counts["ava"]):
        spk = _pick(rng, pool, int(rng.integers(2, 5)), usage)
        add(source="ava", key=youtube_id(rng), speakers=[s.id for s in spk], genre="film",
            targets=[float(rng.uniform(20, 30))])
    clips = counts["vox_clips"]
    for p in range(counts["vox_principals"]):
        principal = _pick(rng, pool, 1, usage)[0]
        for u in range(clips[p % len(clips)]):
            spk = _pick(rng, pool, int(rng.integers(2, 4)), usage, must=[principal])
            usage[principal.id] -= 1
            order = [s.id for s in spk[1:]]
            order.insert(len(order) // 2, principal.id)  # interviewee in the middle
            add(source="voxceleb2", key=f"{principal.vox_id}/{youtube_id(rng)}/{u + 1:05d}",
                speakers=order, genre="interview", targets=[float(rng.uniform(11, 16))],
                principal=principal.id)
    cast = [p for p in pool if p.face in FRIENDS_CAST] or pool
    for e in range(counts["friends"]):
        episode = f"s{1 + e // 24:02d}e{1 + e % 24:02d}"
        chars = _pick(rng, cast, min(len(cast), int(rng.integers(3, 5))), usage)
        for d in range(2):  # two dialogues of one episode, same characters: cross-scene linking
            order = [chars[i].id for i in rng.permutation(len(chars))]
            add(source="friends", key=episode, speakers=order, genre="sitcom",
                targets=[float(rng.uniform(15, 24))], extra={"dialogue": d, "episode_offset": 60.0 + 180.0 * d})
    for y in range(counts["youtube"]):
        spk = _pick(rng, pool, int(rng.integers(2, 5)), usage)
        add(source="youtube", key=youtube_id(rng), speakers=[s.id for s in spk], genre="podcast",
            targets=[float(rng.uniform(20, 32))], sidecar=(y % 5 != 2))
    return items
