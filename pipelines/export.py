"""`amuse export`: a run's outputs in the formats the field's tools read (``eval.export``).

    amuse export --config configs/demo.yaml [--out DIR] [--only rttm,hf,lmms_eval]

Reads the run's clip records and samples (``eval.clips_uri`` / ``eval.samples_uri``, default the run's
``clips/`` and ``samples.parquet``) and writes, under ``--out`` (default ``<output_dir>/<run>/export``):

- ``rttm/pred.rttm``, ``rttm/ref.rttm``, ``rttm/clips.uem``: diarization (``pred_turns``) and labels (``gt_turns``);
- ``hf/data/<split>-00000-of-00001.parquet``: the samples with Audio and Video features
  (``datasets.load_dataset("parquet", data_dir=".../hf")``);
- ``lmms_eval/amuse/``: one lmms-eval task per registered task, reading ``hf``'s test split.

Local output folders only (the Hugging Face and lmms-eval files are read from disk by their tools).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if not __package__:  # run as a script (ray job submit): make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from infra import storage  # noqa: E402
from pipelines.args import job_parser, load_or_exit  # noqa: E402
from pipelines.config import AppConfig  # noqa: E402

FORMATS = ("rttm", "hf", "lmms_eval")


def _rttm(cfg: AppConfig, out: Path, clips: list[dict], samples: list[dict]) -> dict[str, str]:
    from eval.export import rttm

    (out / "rttm").mkdir(parents=True, exist_ok=True)
    files = {"pred.rttm": rttm.to_rttm(clips, "pred_turns"), "ref.rttm": rttm.to_rttm(clips, "gt_turns"),
             "clips.uem": rttm.to_uem(clips)}
    for name, text in files.items():
        (out / "rttm" / name).write_text(text)
    return {"rttm": str(out / "rttm" / "pred.rttm")}


def _hf(cfg: AppConfig, out: Path, clips: list[dict], samples: list[dict]) -> dict[str, str]:
    from eval.export import hf_dataset

    written = hf_dataset.write(samples, {c["clip_id"]: c for c in clips}, out / "hf")
    return {f"hf {split}": path for split, path in written.items()}


def _lmms_eval(cfg: AppConfig, out: Path, clips: list[dict], samples: list[dict]) -> dict[str, str]:
    from eval.export import hf_dataset, lmms_eval

    test = out / "hf" / "data" / "test-00000-of-00001.parquet"
    if not test.exists():
        hf_dataset.write(samples, {c["clip_id"]: c for c in clips}, out / "hf")
    folder = out / "lmms_eval" / "amuse"
    lmms_eval.write(folder, os.path.relpath(test, folder))
    return {"lmms_eval": str(folder)}


EXPORTERS = {"rttm": _rttm, "hf": _hf, "lmms_eval": _lmms_eval}


def run(cfg: AppConfig, out_dir: str | None = None, only: list[str] | None = None) -> dict[str, str]:
    from pipelines.evaluate import curated_uris

    samples_uri, clips_uri = curated_uris(cfg, "export")
    samples = storage.read_parquet(samples_uri, cfg.storage).to_pylist()
    clips = storage.read_parquet(clips_uri, cfg.storage).to_pylist()
    out = Path(out_dir or cfg.output_uri("export"))
    if storage.is_remote(str(out)):
        raise SystemExit(f"export: --out must be a local folder, got {out}")
    written: dict[str, str] = {}
    for name in only or FORMATS:
        written.update(EXPORTERS[name](cfg, out, clips, samples))
    return written


def main(argv: list[str] | None = None) -> int:
    p = job_parser("amuse export", "Export diarization as RTTM, samples as a HF dataset and the tasks for lmms-eval.")
    p.add_argument("--out", default=None, help="output folder (default: <output_dir>/<run>/export)")
    p.add_argument("--only", default=",".join(FORMATS), help=f"comma-separated subset of {','.join(FORMATS)}")
    args = p.parse_args(argv)
    only = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = sorted(set(only) - set(EXPORTERS))
    if unknown:
        p.error(f"--only: unknown format(s) {unknown} (known: {', '.join(FORMATS)})")
    cfg = load_or_exit(p, args.config, args.overrides)
    for name, uri in run(cfg, args.out, only).items():
        print(f"{name:<20} {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
