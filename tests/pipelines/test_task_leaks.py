"""Sample builders on the adapters' own labels: no question or option carries its answer.

STG is the task at risk: its answer is a list of times, and an unnamed speaker used to be named
"Speaker 2 (first heard at 12.5 s)", which is the first interval's start. SRID from VoxCeleb2 is
checked to be skipped, and counted, rather than invented (see eval/tasks/srid.py).
"""

from __future__ import annotations

import json
import re

from corpus_fixtures import write_ami, write_friends, write_voxceleb2, write_youtube

from eval.tasks.build import build_all
from eval.tasks.config import TasksConfig
from pipelines.config import REPO_ROOT, load_app_config
from pipelines.curation.refs import scan_sources

NUMBER = re.compile(r"\d+(?:\.\d+)?")


def clip_rows(corpus: str, out: str) -> list[dict]:
    cfg = load_app_config(REPO_ROOT / "configs" / "demo.yaml", [f"run.corpus_dir={corpus}", f"run.output_dir={out}"])
    return [r.to_row() for r in scan_sources(cfg).refs]


def boundaries(row: dict) -> set[float]:
    return {float(v) for iv in json.loads(row["answer"]) for v in iv}


def numbers(*texts: str) -> set[float]:
    return {float(x) for t in texts for x in NUMBER.findall(t)}


def assert_no_boundary_in_prompt(rows: list[dict]) -> None:
    for r in rows:
        leaked = numbers(r["question"], *r["options"]) & boundaries(r)
        assert not leaked, f"{r['question']!r} holds answer bounds {sorted(leaked)} of {r['answer']}"
        assert "first heard" not in r["question"]


def test_stg_prompts_never_hold_answer_bounds_on_the_sample_corpus(tmp_path):
    rows = clip_rows(str(REPO_ROOT / "data" / "corpus"), str(tmp_path / "out"))
    res = build_all(rows, TasksConfig(tasks=["STG"], per_clip=3), seed=0)
    assert_no_boundary_in_prompt(res.rows)
    ami = [r for r in res.rows if r["source"] == "ami"]
    # AMI's labels have no names, text or faces: its speakers are named by a moment inside a solo stretch.
    assert ami and all("the person speaking at" in r["question"] for r in ami)
    assert {r["source"] for r in res.rows} >= {"ami", "ava", "friends_mmc", "youtube"}


def test_stg_prompts_never_hold_answer_bounds_on_fixtures(tmp_path):
    write_ami(tmp_path, duration=70.0, video=False)
    write_friends(tmp_path, n_turns=8)
    write_youtube(tmp_path)
    rows = clip_rows(str(tmp_path), str(tmp_path / "out"))
    for seed in range(5):
        res = build_all(rows, TasksConfig(tasks=["STG"], per_clip=4), seed=seed)
        assert res.rows
        assert_no_boundary_in_prompt(res.rows)


def test_stg_moment_lies_inside_a_solo_stretch_of_the_target(tmp_path):
    write_ami(tmp_path, duration=70.0, video=False)
    rows = clip_rows(str(tmp_path), str(tmp_path / "out"))
    by_id = {r["clip_id"]: r for r in rows}
    res = build_all(rows, TasksConfig(tasks=["STG"], per_clip=4), seed=0)
    assert res.rows
    for r in res.rows:
        clip = by_id[r["clip_ids"][0]]
        t = float(r["question"].split("speaking at ")[1].split(" s")[0]) + clip["start_s"]
        speaking = {x["speaker"] for x in clip["gt_turns"] if x["start"] <= t <= x["end"]}
        assert speaking == {r["target_speaker"]}


def test_voxceleb2_feeds_csnl_but_not_srid(tmp_path):
    write_voxceleb2(tmp_path)
    rows = clip_rows(str(tmp_path), str(tmp_path / "out"))
    assert rows
    res = build_all(rows, TasksConfig(tasks=["SRID", "CSNL"]), seed=0)
    assert res.counts["SRID"].total() == 0
    assert res.skipped["SRID"]["speaker identity only, no speaker timings (VoxCeleb2)"] == len(rows)
