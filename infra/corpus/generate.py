"""Generate the sample corpus: AMI, AVA-ActiveSpeaker, VoxCeleb2, Friends-MMC and YouTube layouts.

    python -m infra.corpus.generate --out data/corpus --size demo --seed 0
    python -m infra.corpus.generate --out data/corpus_large --size large --seed 0 --jobs 2

Speech is flite, faces are real crops from pip-shipped images with mouths moved
by each speaker's own loudness, and ``manifest.json`` holds the ground truth
known by construction.  The same seed gives the same bytes: every random draw is
seeded per item and libx264/AAC run single-threaded in bitexact mode.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
from pathlib import Path

from infra.corpus import faces, plan, scenes, writers
from infra.corpus.identities import DEMO_IDENTITIES, Identity, large_identities
from infra.corpus.media import FPS, HEIGHT, WIDTH
from infra.corpus.speech import SR, flite_binary

TOP_LEVEL = ("ami", "ava", "voxceleb2", "friends_mmc", "youtube", "manifest.json")
SOURCE_ALIASES = {"friends_mmc": "friends", "vox": "voxceleb2", "voxceleb": "voxceleb2"}


def log(msg: str) -> None:
    print(msg, flush=True)


def usable_identities(size: str) -> list[Identity]:
    """Identities whose face the Haar cascade finds reliably; others are dropped (and said so).

    Joey's three-quarter profile in the group photo already fails, so he has no identity.
    """
    reliable = {}
    for key in dict.fromkeys(i.face for i in DEMO_IDENTITIES):
        reliable[key] = faces.is_reliable(faces.Face(key))
        if not reliable[key]:
            log(f"face '{key}': Haar does not find it reliably; its identity is not used")
    if size == "demo":
        return [i for i in DEMO_IDENTITIES if reliable[i.face]]
    gender = {i.face: i.gender for i in DEMO_IDENTITIES}
    keys_f = [k for k, ok in reliable.items() if ok and gender.get(k) == "f"]
    keys_m = [k for k, ok in reliable.items() if ok and gender.get(k) == "m"]
    pool = [i for i in large_identities(keys_f, keys_m) if reliable[i.face]]
    # Mirrored/tinted variants must pass the same check.
    return [i for i in pool if i.face_variant == 0 or faces.is_reliable(faces.Face(i.face, i.face_variant))]


_CTX: scenes.Context | None = None


def _init_worker(out: str, seed: int, identities: list[Identity]) -> None:
    global _CTX
    _CTX = scenes.Context(Path(out), seed, identities)


def _build(item: plan.Item) -> scenes.Built:
    return scenes.build_item(_CTX, item)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def generate(out: Path, size: str = "demo", seed: int = 0, limit: int | None = None,
             sources: list[str] | None = None, jobs: int = 1) -> dict:
    """Write the corpus under ``out`` (replacing the five source folders) and return the manifest."""
    flite_binary()
    t0 = time.time()
    identities = usable_identities(size)
    items = plan.build_plan(size, seed, identities)
    if sources:
        items = [i for i in items if i.source in sources]
    if limit is not None:
        items = items[:limit]
    out.mkdir(parents=True, exist_ok=True)
    for name in TOP_LEVEL:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    log(f"corpus: size={size} seed={seed} items={len(items)} identities={len(identities)} -> {out}")
    if jobs > 1 and len(items) > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(jobs, _init_worker, (str(out), seed, identities)) as pool:
            built = pool.map(_build, items, chunksize=1)
        for item, b in zip(items, built, strict=True):
            log(f"  {item.source:9s} {item.key:32s} {len(b.files):2d} files")
    else:
        _init_worker(str(out), seed, identities)
        built = []
        for item in items:
            t = time.time()
            built.append(_build(item))
            log(f"  {item.source:9s} {item.key:32s} {len(built[-1].files):2d} files  {time.time() - t:5.1f} s")

    files = [f for b in built for f in b.files]
    friends = [b.friends_dialogue for b in built if b.friends_dialogue is not None]
    if friends:
        writers.write_json(out / "friends_mmc/test-metadata.json", friends)
        files.append("friends_mmc/test-metadata.json")
    if any(i.source == "voxceleb2" for i in items):
        # Like the real file, the meta lists every identity of the dataset, not only those with clips.
        rows = [(i.vox_id, i.vgg_id, i.gender, "dev") for i in identities]
        writers.write_vox_meta(out / "voxceleb2/vox2_meta.csv", rows)
        files.append("voxceleb2/vox2_meta.csv")
    used = {s["identity"] for b in built for sc in b.scenes for s in sc["speakers"]}
    manifest = {
        "generator": "infra.corpus.generate", "version": 1, "size": size, "seed": seed,
        "sample_rate": SR, "fps": FPS, "width": WIDTH, "height": HEIGHT,
        "time_base": "seconds from the start of the media file (Friends-MMC: of the dialogue, see media.clips)",
        "overlap_ratio": "overlapped speech time / total speech time, from the turns",
        "identities": [scenes.identity_entry(i) for i in identities if i.id in used],
        "scenes": [sc for b in built for sc in b.scenes],
        "files": {f: {"bytes": (out / f).stat().st_size, "sha256": _sha256(out / f)} for f in sorted(files)},
    }
    writers.write_json(out / "manifest.json", manifest)
    total = sum(v["bytes"] for v in manifest["files"].values()) + (out / "manifest.json").stat().st_size
    for f in sorted(files):
        log(f"  wrote {f} ({manifest['files'][f]['bytes'] / 1024:.0f} KiB)")
    log(f"  wrote manifest.json: {len(manifest['scenes'])} scenes, {len(manifest['identities'])} identities")
    log(f"corpus done: {len(files) + 1} files, {total / 1e6:.2f} MB in {time.time() - t0:.1f} s")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m infra.corpus.generate", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/corpus"), help="output root (default data/corpus)")
    ap.add_argument("--size", choices=sorted(plan.COUNTS), default="demo", help="demo (committed) or large")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="render only the first N planned items")
    ap.add_argument("--sources", default=None,
                    help="comma-separated subset of " + ",".join(plan.SOURCES)
                    + " (applied before --limit); the output then holds only these sources")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (output is identical for any value)")
    ap.add_argument("--save-assets", action="store_true",
                    help="refresh infra/corpus/assets/*.png from the installed packages, then exit")
    args = ap.parse_args(argv)
    if args.save_assets:
        for path in faces.save_assets(dict.fromkeys(i.face for i in DEMO_IDENTITIES)):
            log(f"wrote {path}")
        return 0
    sources = None
    if args.sources:
        sources = [SOURCE_ALIASES.get(s.strip(), s.strip()) for s in args.sources.split(",") if s.strip()]
        unknown = set(sources) - set(plan.SOURCES)
        if unknown:
            ap.error(f"unknown sources: {sorted(unknown)}")
    generate(args.out, args.size, args.seed, args.limit, sources, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
