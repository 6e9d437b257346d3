"""Does RAFT learn? The learnability study on the text-only testbed (bench/raft_testbed.py).

Protocol (one process, torch threads 1, no Ray):
1. Build the testbed (train / val / test scenes, the real task builders, oracle perception) and a
   tiny Qwen2.5-Omni thinker from scratch whose tokenizer is trained on the testbed's prompts.
2. SFT warm start: all parameters, L_align only. **Calibration gate** on it, before any comparison:
   held-out (test) task metric per task in [0.3, 0.7], and >= 80% of K-candidate groups (val prompts,
   training temperature) with non-zero reward spread.
3. Arms from that one checkpoint, equal steps and equal prompts seen (``--steps`` x ``--batch``),
   ``--seeds`` seeds each (a seed fixes data order and sampling): SFT continued; RRO softmax at each
   beta; best-of-K; linear signed weights; GRPO-style; RRO on unlabelled prompts (answer weight 0,
   lambda_align 0: no label enters the loss); LoRA ~5% and full fine-tuning (softmax beta 1);
   L_temp on (softmax beta 1); SFT at the wall-clock of the softmax beta 1 arm. Unless named, an arm
   trains the default SRA preset (cross_modal).
   Learning rates: before the study, each arm of SWEPT runs every rate of ``--lr-grid`` on seed 0 and keeps
   the one with the best final *validation* score; the arms that vary one of them (LR_OF) take its rate.
4. Validation curve every ``--val-every`` steps (greedy, val prompts), final held-out scores per
   prompt (greedy, test prompts), wall-clock. bench/raft_stats.py turns them into paired
   hierarchical-bootstrap intervals; bench/raft_learn_report.py renders bench/README.md's section.

The JSON (``bench/results/raft_learn.json``) is rewritten after every arm, so a cut-off run still reports.

    .venv/bin/python bench/raft_learn.py [--seeds 5] [--steps 50] [--lr-grid 0.003,0.01,0.03]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.raft_testbed import TestbedConfig, build_testbed, subsample  # noqa: E402
from eval.tasks import get_task  # noqa: E402
from raft.config import SRAConfig, TinyModelConfig, TrainConfig  # noqa: E402
from raft.data import build_prompt  # noqa: E402
from raft.model import OmniPolicy, build_tiny  # noqa: E402
from raft.objective import encode_prompt, raft_loss, reward_item  # noqa: E402
from raft.rollout import SerialRollout, reward_settings, slim_clips  # noqa: E402
from raft.sra import apply_sra  # noqa: E402

OUT = Path("bench/results")
SRA = SRAConfig()  # the default preset, cross_modal
LORA_5 = SRAConfig(method="lora", lora_rank=26, top_layers=2)  # rank 26 on q/k/v/o of both layers: 4.97% here
FULL = SRAConfig(method="full")


@dataclass
class Arm:
    """One training setting of the study; ``train`` overrides TrainConfig fields."""

    name: str
    sft: bool = False
    sra: SRAConfig = field(default_factory=SRAConfig)
    train: dict = field(default_factory=dict)
    wallclock_of: str | None = None  # SFT steps until this arm's training wall-clock is reached


def arms(betas: list[float]) -> list[Arm]:
    out = [Arm("sft", sft=True)]
    out += [Arm(f"softmax_b{b:g}", train={"beta": b}) for b in betas]
    out += [Arm("best_of_k", train={"rro_weighting": "best_of_k"}),
            Arm("linear", train={"rro_weighting": "linear"}),
            Arm("grpo", train={"rro_weighting": "grpo"}),
            Arm("unlabelled", train={"beta": 1.0, "lambda_align": 0.0, "rewards": {"answer": 0.0}}),
            Arm("lora5", sra=LORA_5, train={"beta": 1.0}),
            Arm("full", sra=FULL, train={"beta": 1.0}),
            Arm("ltemp", train={"beta": 1.0, "alpha": 0.05}),
            Arm("sft_wallclock", sft=True, wallclock_of="softmax_b1")]
    return out


def encode(policy, rows, clips, cfg):
    return [encode_prompt(policy, build_prompt(s, clips, "guided"), None, [], cfg) for s in rows]


def greedy_scores(policy, data, cfg, chunk: int = 24) -> dict:
    """Per-prompt task score (the evaluator's scorer: accuracy / tIoU) and format rate, greedy decoding."""
    scores, fmt = [], []
    for i in range(0, len(data), chunk):
        part = data[i : i + chunk]
        ids = policy.generate_batch([ep.enc for ep in part], 1, cfg.max_new_tokens, greedy=True)
        for ep, c in zip(part, ids, strict=True):
            text = policy.decode(c[0])
            task = get_task(ep.prompt.sample["task"])
            ans = task.parse(text, ep.prompt.sample)
            scores.append(float(task.score(ans, ep.prompt.sample).score))
            fmt.append(float(ans.ok))
    tasks = [ep.prompt.sample["task"] for ep in data]
    by_task = {t: float(np.mean([s for s, u in zip(scores, tasks, strict=True) if u == t])) for t in sorted(set(tasks))}
    return {"scores": scores, "mean": float(np.mean(list(by_task.values()))) if by_task else float("nan"),
            "by_task": by_task, "format_rate": float(np.mean(fmt))}


def group_spread(policy, data, cfg, rollout) -> dict:
    """Share of K-candidate groups (training temperature) whose total reward is not all equal."""
    spread, per_task = [], {}
    for i in range(0, len(data), 8):
        part = data[i : i + 8]
        ids = policy.generate_batch([ep.enc for ep in part], cfg.k, cfg.max_new_tokens, cfg.temperature, cfg.top_p)
        for ep, cands in zip(part, ids, strict=True):
            res = rollout.score([reward_item(ep.prompt, policy.decode(c)) for c in cands])
            r = [x.total for x in res]
            ok = max(r) - min(r) > cfg.rro_tie_tol
            spread.append(ok)
            per_task.setdefault(ep.prompt.sample["task"], []).append(ok)
    return {"nonzero_spread": float(np.mean(spread)), "by_task": {t: float(np.mean(v)) for t, v in per_task.items()}}


def train(policy, data, cfg, rollout, steps, sft, val=None, val_every=0, time_budget=None):
    """AdamW on the trainable parameters; returns (validation curve points, train seconds, steps run)."""
    opt = torch.optim.AdamW([p for p in policy.model.parameters() if p.requires_grad], lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    curve, t_train, step = [], 0.0, 0
    while step < steps:
        t0 = time.perf_counter()
        batch = [data[i] for i in rng.choice(len(data), cfg.batch_size, replace=False)]
        loss, _ = raft_loss(policy, batch, cfg, rollout, sft=sft)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in policy.model.parameters() if p.requires_grad], cfg.grad_clip)
        opt.step()
        t_train += time.perf_counter() - t0
        step += 1
        if val is not None and val_every and step % val_every == 0:
            v = greedy_scores(policy, val, cfg)
            curve.append({"step": step, "val": v["mean"], "format_rate": v["format_rate"]})
        if time_budget is not None and t_train >= time_budget:
            break
    return curve, t_train, step


def branch(base_model, processor, sra):
    pol = OmniPolicy(copy.deepcopy(base_model), processor)
    pol.model, rep = apply_sra(pol.model, sra)
    return pol, rep["sra/trainable_fraction"]


# Arms whose learning rate is picked on validation before the study; the others take the rate of the arm
# they vary (same loss, other parameters or budget), so the sweep costs 6 x |grid| seed-0 runs, not 11.
SWEPT = ("sft", "softmax_b1", "best_of_k", "linear", "grpo", "unlabelled")
LR_OF = {"softmax_b0.3": "softmax_b1", "lora5": "softmax_b1", "full": "softmax_b1", "ltemp": "softmax_b1",
         "sft_wallclock": "sft"}


def arm_cfg(cfg: TrainConfig, arm: Arm, lr: float, seed: int) -> TrainConfig:
    c = replace(cfg, lr=lr, seed=seed, sra=arm.sra, **{k: v for k, v in arm.train.items() if k != "rewards"},
                rewards={**cfg.rewards, **arm.train.get("rewards", {})})
    c.validate()
    return c


def pick_lr(rows: list[dict]) -> float:
    """Best final validation score; ties (common: greedy validation moves in steps of 1/prompts) go to the
    better mean of the validation curve, then to the smaller rate."""
    return max(rows, key=lambda r: (r["val_final"], float(np.mean([p["val"] for p in r["curve"]])), -r["lr"]))["lr"]


def lr_sweep(args, chosen, cfg, tb, warm, base, dtr, dva) -> tuple[list[dict], dict[str, float]]:
    """Validation score of each swept arm at each rate of ``--lr-grid`` (seed 0, validation prompts only, never
    test), and the rate picked per arm (unswept arms take the rate of the arm in LR_OF)."""
    rows = []
    for lr in [float(x) for x in args.lr_grid.split(",")]:
        for arm in chosen:
            if arm.name not in SWEPT:
                continue
            c = arm_cfg(cfg, arm, lr, seed=0)
            roll = SerialRollout(slim_clips(list(tb.clips.values())), *reward_settings(c))
            pol, _ = branch(warm.model, base.processor, arm.sra)
            curve, t_train, n = train(pol, dtr, c, roll, args.steps, arm.sft, dva, args.val_every)
            rows.append({"arm": arm.name, "lr": lr, "val_final": curve[-1]["val"], "curve": curve, "train_s": t_train})
            print(f"lr {lr:g} {arm.name:<14} val {curve[-1]['val']:.3f} fmt {curve[-1]['format_rate']:.2f}", flush=True)
    picked = {a: pick_lr([r for r in rows if r["arm"] == a]) for a in dict.fromkeys(r["arm"] for r in rows)}
    for arm in chosen:
        if arm.name not in picked:
            picked[arm.name] = picked.get(LR_OF.get(arm.name, ""), args.lr)
    return rows, picked


def write(res: dict, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps(res, indent=1))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=50, help="steps of every arm (equal prompts seen)")
    ap.add_argument("--sft-steps", type=int, default=800, help="supervised warm start, all parameters")
    ap.add_argument("--sft-lr", type=float, default=3e-3)
    ap.add_argument("--lr", type=float, default=1e-2, help="AdamW lr of the arms when --lr-grid is empty")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--betas", default="0.3,1")
    ap.add_argument("--val-every", type=int, default=10)
    ap.add_argument("--per-task", type=int, default=40, help="held-out prompts per task")
    ap.add_argument("--val-per-task", type=int, default=15)
    ap.add_argument("--max-new-tokens", type=int, default=44, help="covers the STG references (<= 49 tokens, mean 35)")
    ap.add_argument("--num-options", type=int, default=3)
    ap.add_argument("--speaker-noise", type=float, default=0.0)
    ap.add_argument("--time-noise", type=float, default=0.0)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--arms", default="", help="comma list of arm names to run (default: all)")
    ap.add_argument("--lr-grid", default="0.003,0.01,0.03", help="comma list of lrs: before the study, each swept "
                    "arm runs at each on seed 0 and keeps the rate with the best final validation score (validation "
                    "only, never test); empty: --lr for every arm")
    ap.add_argument("--gate-only", action="store_true", help="stop after the calibration gate")
    ap.add_argument("--out", default="raft_learn.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)  # the parser's per-candidate warnings would flood the log
    t_start = time.perf_counter()
    tbc = TestbedConfig(num_options=args.num_options, speaker_noise=args.speaker_noise, time_noise_s=args.time_noise)
    tb = build_testbed(tbc)
    tr = tb.samples["train"]
    va = subsample(tb.samples["val"], args.val_per_task, 1)
    te = subsample(tb.samples["test"], args.per_task, 2)
    tiny = TinyModelConfig(hidden_size=args.hidden, num_layers=args.layers, intermediate_size=16 * (args.hidden * 16 // 3 // 16),
                           vocab_size=args.vocab)
    cfg = TrainConfig(model_cache_dir=".cache/raft_learn", tiny=tiny, k=args.k, batch_size=args.batch,
                      max_new_tokens=args.max_new_tokens, num_frames=0, max_audio_s=30.0, alpha=0.0, lr=args.lr, sra=SRA)
    texts = [m["content"] for s in tr[:600] for m in build_prompt(s, tb.clips, "guided").messages]
    texts += [build_prompt(s, tb.clips, "guided").reference for s in tr[:600]]
    base = OmniPolicy.from_pretrained(build_tiny(cfg, texts), cfg.dtype, cfg.max_audio_s)
    rollout = SerialRollout(slim_clips(list(tb.clips.values())), *reward_settings(cfg))
    dtr, dva, dte = (encode(base, rows, tb.clips, cfg) for rows in (tr, va, te))
    plen = [ep.enc.length for ep in dte]
    res = {"testbed": {**asdict(tbc), "train": len(tr), "val": len(va), "test": len(te),
                       "skipped": tb.skipped, "prompt_tokens_mean": float(np.mean(plen)),
                       "prompt_tokens_max": int(max(plen))},
           "args": vars(args), "model": {**asdict(tiny), "parameters": sum(p.numel() for p in base.model.parameters())},
           "machine": {"cpus": 2, "threads": 1, "arch": platform.machine(), "note": "shared with other jobs"},
           "arms": {}}
    print(f"testbed: {len(tr)} train / {len(va)} val / {len(te)} test prompts, {np.mean(plen):.0f} tokens mean; "
          f"model {res['model']['parameters']:,} parameters", flush=True)

    # 1. SFT warm start and the calibration gate
    warm = OmniPolicy(copy.deepcopy(base.model), base.processor)
    # the warm start depends only on the testbed, the model and the SFT settings: cached, so reruns of the
    # arms (or a cut-off run) start from the very same checkpoint
    key = json.dumps([asdict(tbc), asdict(tiny), args.sft_steps, args.sft_lr, args.batch, args.val_per_task])
    ckpt = Path(cfg.model_cache_dir) / f"warm-{hashlib.sha1(key.encode()).hexdigest()[:12]}.pt"
    if ckpt.exists():
        saved = torch.load(ckpt)
        warm.model.load_state_dict(saved["state"])
        warm_curve, sft_s = saved["curve"], saved["wall_s"]
    else:
        t0 = time.perf_counter()
        warm_curve, _, _ = train(warm, dtr, replace(cfg, lr=args.sft_lr, sra=FULL), rollout, args.sft_steps,
                                 sft=True, val=dva, val_every=max(1, args.sft_steps // 5))
        sft_s = time.perf_counter() - t0
        torch.save({"state": warm.model.state_dict(), "curve": warm_curve, "wall_s": sft_s}, ckpt)
    w_test, w_val = greedy_scores(warm, dte, cfg), greedy_scores(warm, dva, cfg)
    spread = group_spread(warm, dva, cfg, rollout)
    gate = {"test_metric_by_task": w_test["by_task"], "test_metric_mean": w_test["mean"],
            "format_rate": w_test["format_rate"], **spread,
            "metric_in_band": all(0.3 <= v <= 0.7 for v in w_test["by_task"].values()),
            "spread_ok": spread["nonzero_spread"] >= 0.8}
    gate["passed"] = gate["metric_in_band"] and gate["spread_ok"]
    res["warm"] = {"steps": args.sft_steps, "wall_s": sft_s, "curve": warm_curve, "val": w_val["mean"],
                   "val_format_rate": w_val["format_rate"], "test_scores": w_test["scores"]}
    res["gate"] = gate
    res["test_tasks"] = [s["task"] for s in te]
    write(res, args.out)
    print(f"warm start {args.sft_steps} steps in {sft_s:.0f} s; gate: {json.dumps(gate)}", flush=True)
    if args.gate_only:
        return 0

    # 2. the arms, seed-major so that a cut-off run has every arm at the first seeds
    chosen = [a for a in arms([float(b) for b in args.betas.split(",")]) if not args.arms or a.name in args.arms.split(",")]
    # 2a. learning rates on validation, before any held-out score is computed
    picked = {a.name: args.lr for a in chosen}
    if args.lr_grid:
        res["lr_sweep"], picked = lr_sweep(args, chosen, cfg, tb, warm, base, dtr, dva)
    res["lr_picked"] = picked
    write(res, args.out)
    for seed in range(args.seeds):
        for arm in chosen:
            c = arm_cfg(cfg, arm, picked[arm.name], seed)
            roll = SerialRollout(slim_clips(list(tb.clips.values())), *reward_settings(c))
            pol, frac = branch(warm.model, base.processor, arm.sra)
            budget, steps = None, args.steps
            if arm.wallclock_of:
                ref = res["arms"].get(arm.wallclock_of, {}).get("runs", [])
                ref = [r for r in ref if r["seed"] == seed]
                if not ref:
                    continue
                budget, steps = ref[0]["train_s"], 50 * args.steps
            curve, t_train, n = train(pol, dtr, c, roll, steps, arm.sft, dva, args.val_every, budget)
            final = greedy_scores(pol, dte, c)
            entry = res["arms"].setdefault(arm.name, {"trainable_fraction": frac, "sft": arm.sft, "sra": asdict(arm.sra),
                                                      "train": arm.train, "lr": c.lr, "runs": []})
            entry["runs"].append({"seed": seed, "steps": n, "train_s": t_train, "curve": curve,
                                  "test": final["mean"], "test_by_task": final["by_task"],
                                  "format_rate": final["format_rate"], "test_scores": final["scores"]})
            res["wall_s"] = time.perf_counter() - t_start
            write(res, args.out)
            print(f"seed {seed} {arm.name:<14} {n:>4} steps {t_train:6.1f} s  test {final['mean']:.3f} "
                  f"{json.dumps({k: round(v, 3) for k, v in final['by_task'].items()})} fmt {final['format_rate']:.2f}"
                  f"  [{time.perf_counter() - t_start:.0f} s]", flush=True)
    res["wall_s"] = time.perf_counter() - t_start
    res["complete"] = True
    write(res, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
