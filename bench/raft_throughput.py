"""RAFT throughput on CPU: our RRO step vs TRL GRPOTrainer, and the reward stage serial vs actor pool.

Same tiny Qwen2.5-Omni thinker, same K, prompts per step and completion length, text-only prompts
(TRL's GRPOTrainer takes text), the same reward function (raft.rewards), full-parameter updates
on both sides, fp32, 1 torch thread. Prints a table and writes bench/results/raft_throughput.json.

    .venv/bin/python bench/raft_throughput.py [--steps 8] [--k 4] [--prompts 4] [--new-tokens 32]
        [--per-prompt-too] [--skip-reward] [--out raft_throughput.json]
    .venv/bin/python bench/raft_throughput.py --long-prompt [--runs 3] [--steps 2]

``--long-prompt`` times the RRO step at a long multimodal prompt (30 s of audio = 750 audio tokens,
4 frames, guided text: about 1,000 prompt tokens), K=8, the default SRA preset, each path in
``--runs`` back-to-back runs: the prompt copied into every row (``train.share_prompt=false``) and the
prompt once (packed scoring, shared prefill). It also scores the same fixed candidates on both
paths and records the two losses and the largest gradient difference (equal loss), writes
bench/results/raft_step_long_prompt.json and regenerates its section of bench/README.md from it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Ray starts workers at nice 15; on a shared machine that starves the reward actors against a nice-0 serial
# baseline in the driver, which measures the scheduler, not the pool. Same priority for both sides.
os.environ.setdefault("RAY_worker_niceness", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from raft.config import SRAConfig, TrainConfig  # noqa: E402
from raft.model import OmniPolicy  # noqa: E402
from raft.objective import EncodedPrompt, candidates_loss, raft_loss  # noqa: E402
from raft.rewards import RewardItem  # noqa: E402
from raft.rollout import ActorPoolRollout, SerialRollout, reward_settings  # noqa: E402

QUESTIONS = [
    ("Which visible person spoke first? A. track t1 B. track t2", "A"),
    ("Who speaks next? A. Rachel B. Ross C. Monica", "B"),
    ("Which later segment is the same speaker as segment 1? A. 2 B. 3", "A"),
    ("Do the two scenes share a speaker? A. yes B. no", "B"),
]


def _items(prompts, texts):
    return [RewardItem(sample_id=f"s{i}", task="AVSA", clip_ids=[], text=t, options=["x", "y", "z"], answer=a)
            for i, ((_, a), t) in enumerate(zip(prompts, texts, strict=True))]


def bench_ours(policy, cfg, steps):
    from raft.data import Prompt

    rollout = SerialRollout({}, *reward_settings(cfg))
    batch = []
    for q, a in QUESTIONS[: cfg.batch_size]:
        sample = {"sample_id": q, "task": "AVSA", "clip_ids": [], "options": ["x", "y", "z"], "answer": a}
        p = Prompt(sample, [{"role": "system", "content": ""}, {"role": "user", "content": q}], [], f"answer: {a}",
                   {"start_s": 0.0, "end_s": 1.0})
        enc = policy.processor.encode(q)
        batch.append(EncodedPrompt(p, enc, 1.0, policy.reference_ids(p.reference)))
    opt = torch.optim.AdamW([p for p in policy.model.parameters() if p.requires_grad], lr=1e-4)
    times, toks = [], 0
    for s in range(steps + 1):
        t0 = time.perf_counter()
        loss, m = raft_loss(policy, batch, cfg, rollout)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s:  # the first step warms up allocators and caches
            times.append(time.perf_counter() - t0)
            toks += m["gen/tokens"]
    sec = sum(times)
    return {"s_per_step": sec / steps, "prompts_per_s": cfg.batch_size * steps / sec, "gen_tok_per_s": toks / sec,
            "median_s_per_step": statistics.median(times)}


def bench_trl(policy, cfg, steps):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    weights, opts = reward_settings(cfg)
    from raft.rewards import score_item

    answers = {q: a for q, a in QUESTIONS}
    gen_tokens = []  # completion tokens per generation round (one per step here)

    def reward(prompts, completions, **kw):
        gen_tokens.append(sum(len(c) for c in kw.get("completion_ids") or []))
        return [score_item(RewardItem("s", "AVSA", [], c, ["x", "y", "z"], answers[p]), [], weights, opts).total
                for p, c in zip(prompts, completions, strict=True)]

    n = cfg.batch_size * (steps + 1)
    ds = Dataset.from_list([{"prompt": QUESTIONS[i % cfg.batch_size][0]} for i in range(n)])
    args = GRPOConfig(
        output_dir="/tmp/raft_trl_bench", per_device_train_batch_size=cfg.batch_size * cfg.k,
        num_generations=cfg.k, max_completion_length=cfg.max_new_tokens, max_steps=steps + 1, beta=0.0,
        learning_rate=1e-4, report_to=[], logging_steps=10**6, save_strategy="no", use_cpu=True,
        dataloader_num_workers=0, temperature=1.0, top_k=0, disable_tqdm=True,
    )
    tok = policy.processor.tokenizer
    trainer = GRPOTrainer(model=policy.model, reward_funcs=reward, args=args, train_dataset=ds,
                          processing_class=tok)
    from transformers import TrainerCallback

    stamps = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            stamps.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    sec = stamps[-1] - stamps[0]
    # the timed window is steps 2..steps+1 (after the first step's end); round 0 is the warm-up step's
    toks = sum(gen_tokens[1 : steps + 1]) if len(gen_tokens) >= steps + 1 else float("nan")
    return {"s_per_step": sec / steps, "prompts_per_s": cfg.batch_size * steps / sec,
            "gen_tok_per_s": toks / sec, "gen_rounds": len(gen_tokens),
            "median_s_per_step": statistics.median(b - a for a, b in zip(stamps[:-1], stamps[1:], strict=True))}


LONG_TITLE = "RAFT step, each prompt once (`bench/raft_throughput.py --long-prompt`)"


def long_batch(policy, n: int, audio_s: float, frames: int, frame_size: int) -> list[EncodedPrompt]:
    """``n`` guided-style prompts with ``audio_s`` of noise audio and ``frames`` random frames."""
    import numpy as np

    from raft.data import Prompt

    rng = np.random.default_rng(0)
    out = []
    for i, (q, a) in enumerate(QUESTIONS[:n]):
        cues = "\n".join(f"[{t:.1f}-{t + 1.5:.1f}] S{t % 3:.0f}: the budget meeting is tomorrow and the design"
                         f" team agrees" for t in np.arange(0.0, 12.0 + 2 * i, 2.0))
        text = f"{q}\nCues:\n{cues}\nAnswer with plan: act: reflect: answer: sections."
        sample = {"sample_id": f"long{i}", "task": "AVSA", "clip_ids": [], "options": ["x", "y", "z"], "answer": a}
        p = Prompt(sample, [{"role": "system", "content": "You are an assistant."},
                            {"role": "user", "content": text}], [], f"answer: {a}", {"start_s": 0.0, "end_s": audio_s})
        audio = (0.1 * rng.standard_normal(int(audio_s * 16000))).astype(np.float32)
        fr = [(audio_s * (j + 0.5) / frames, rng.integers(0, 255, (frame_size, frame_size, 3), dtype=np.uint8))
              for j in range(frames)]
        enc = policy.processor.encode_chat(p.messages, audio, fr)
        out.append(EncodedPrompt(p, enc, audio_s, policy.reference_ids(p.reference)))
    return out


def bench_long(args) -> dict:
    from raft.sra import apply_sra

    cfg = TrainConfig(model_cache_dir=".cache/raft_tiny", k=args.k, batch_size=args.prompts,
                      max_new_tokens=args.new_tokens, max_audio_s=30.0, reward_actors=0)
    base = OmniPolicy.build(cfg)
    batch = long_batch(base, cfg.batch_size, 30.0, 4, cfg.frame_size)
    rollout = SerialRollout({}, *reward_settings(cfg))
    out = {"shape": {"prompt_tokens": [ep.enc.length for ep in batch], "audio_s": 30.0, "frames": 4,
                     "B": cfg.batch_size, "K": cfg.k, "new_tokens": cfg.max_new_tokens, "sra": cfg.sra.preset,
                     "params": sum(p.numel() for p in base.model.parameters()), "torch_threads": 1},
           "steps_per_run": args.steps, "runs": args.runs}
    # equal loss: the same fixed candidates (greedy, decoded once) and rewards scored by both layouts
    model, _ = apply_sra(copy.deepcopy(base.model), cfg.sra)
    pol = OmniPolicy(model, base.processor)
    cands = pol.generate_batch([ep.enc for ep in batch], cfg.k, cfg.max_new_tokens, greedy=False)
    rewards = torch.arange(cfg.batch_size * cfg.k, dtype=torch.float32).view(cfg.batch_size, cfg.k) % 3
    params = [p for p in model.parameters() if p.requires_grad]
    eq = {}
    for shared in (False, True):
        loss, _ = candidates_loss(pol, batch, cands, rewards, replace(cfg, share_prompt=shared))
        eq[shared] = (loss.item(), torch.autograd.grad(loss, params))
    out["equal_loss"] = {"copied": eq[False][0], "shared": eq[True][0],
                         "max_abs_grad_diff": max(float((a - b).abs().max()) for a, b in zip(eq[False][1], eq[True][1],
                                                                                             strict=True))}
    for name, shared in (("copied prompt (before)", False), ("prompt once (share_prompt)", True)):
        c = replace(cfg, share_prompt=shared)
        runs = []
        for _ in range(args.runs):
            model, _ = apply_sra(copy.deepcopy(base.model), c.sra)
            pol = OmniPolicy(model, base.processor)
            opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
            torch.manual_seed(0)
            times, phases = [], []
            for s in range(args.steps + 1):
                t0 = time.perf_counter()
                loss, m = raft_loss(pol, batch, c, rollout)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if s:
                    times.append(time.perf_counter() - t0)
                    phases.append({k: m[k] for k in ("time/generate_s", "time/forward_s")})
            runs.append({"median_s_per_step": statistics.median(times),
                         "generate_s": statistics.median(p["time/generate_s"] for p in phases),
                         "score_s": statistics.median(p["time/forward_s"] for p in phases)})
        med = statistics.median(r["median_s_per_step"] for r in runs)
        out[name] = {"runs": runs, "median_s_per_step": med, "prompts_per_s": cfg.batch_size / med}
    out["speedup"] = out["copied prompt (before)"]["median_s_per_step"] / out["prompt once (share_prompt)"][
        "median_s_per_step"]
    out["load_average_1_5_15_after"] = list(os.getloadavg())
    return out


def long_section(r: dict) -> str:
    sh = r["shape"]
    rows = "\n".join(
        f"| {name} | {r[name]['median_s_per_step']:.3f} | {r[name]['prompts_per_s']:.3f} | "
        f"{statistics.median(x['generate_s'] for x in r[name]['runs']):.3f} | "
        f"{statistics.median(x['score_s'] for x in r[name]['runs']):.3f} |"
        for name in ("copied prompt (before)", "prompt once (share_prompt)"))
    eq = r["equal_loss"]
    return (f"## {LONG_TITLE}\n\n<!-- generated from bench/results/raft_step_long_prompt.json; do not edit -->\n\n"
            f"Tiny Qwen2.5-Omni thinker ({sh['params']:,} parameters), prompts of {sh['prompt_tokens']} tokens "
            f"({sh['audio_s']:.0f} s audio, {sh['frames']} frames, guided text), B={sh['B']} x K={sh['K']}, "
            f"{sh['new_tokens']} new tokens, SRA `{sh['sra']}`, fp32, 1 torch thread. Median step of "
            f"{r['steps_per_run']} timed steps (after one warm-up), median over {r['runs']} runs per path.\n\n"
            f"| path | s/step | prompts/s | generate s | score (fwd) s |\n|---|---|---|---|---|\n{rows}\n\n"
            f"**Speed-up: {r['speedup']:.2f}x** (target >= 3x). Equal loss on the same fixed candidates and "
            f"rewards: {eq['copied']:.6f} (copied) vs {eq['shared']:.6f} (prompt once), largest gradient "
            f"difference {eq['max_abs_grad_diff']:.2e}. Measured on a 2-core machine shared with other sessions "
            f"(load average after: {', '.join(f'{x:.1f}' for x in r['load_average_1_5_15_after'])}).\n")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--reward-items", type=int, default=2048)
    ap.add_argument("--reward-clips", type=int, default=16, help="real-speech windows the candidates are spread over")
    ap.add_argument("--reward-only", action="store_true", help="skip the trainer comparison")
    ap.add_argument("--out", default="raft_throughput.json", help="file name under bench/results/")
    ap.add_argument("--skip-reward", action="store_true", help="skip the reward-stage (actor pool) comparison")
    ap.add_argument("--per-prompt-too", action="store_true",
                    help="also time our step with train.batch_prompts=false (one generate/forward per prompt)")
    ap.add_argument("--long-prompt", action="store_true", help="time the step at a ~1,000-token AV prompt, "
                    "copied vs once (set --k 8 --prompts 2)")
    ap.add_argument("--runs", type=int, default=3, help="--long-prompt: runs per path (median)")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.long_prompt:
        r = bench_long(args)
        Path("bench/results").mkdir(parents=True, exist_ok=True)
        (Path("bench/results") / "raft_step_long_prompt.json").write_text(json.dumps(r, indent=1))
        print(long_section(r))
        if not args.no_readme:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from _readme import replace_section

            replace_section(LONG_TITLE, long_section(r))
        return 0
    cfg = TrainConfig(model_cache_dir=".cache/raft_tiny", k=args.k, batch_size=args.prompts,
                      max_new_tokens=args.new_tokens, alpha=0.0, lambda_align=0.0, sra=SRAConfig(method="full"))
    results = {}
    if args.reward_only:
        results.update(reward_stage(cfg, args.reward_items, args.reward_clips))
        _print_reward(results["reward stage"])
        results["load_average_1_5_15_after"] = list(os.getloadavg())
        Path("bench/results").mkdir(parents=True, exist_ok=True)
        (Path("bench/results") / args.out).write_text(json.dumps(results, indent=1))
        return 0
    base = OmniPolicy.build(cfg)
    torch.manual_seed(0)
    results["raft (ours, RRO step)"] = bench_ours(OmniPolicy(copy.deepcopy(base.model), base.processor), cfg, args.steps)
    if args.per_prompt_too:
        torch.manual_seed(0)
        results["raft, per-prompt calls"] = bench_ours(OmniPolicy(copy.deepcopy(base.model), base.processor),
                                                       replace(cfg, batch_prompts=False), args.steps)
    torch.manual_seed(0)
    results["TRL GRPOTrainer 1.16"] = bench_trl(OmniPolicy(copy.deepcopy(base.model), base.processor), cfg, args.steps)
    if not args.skip_reward:
        results.update(reward_stage(cfg, args.reward_items, args.reward_clips))
    ours, trl = results["raft (ours, RRO step)"], results["TRL GRPOTrainer 1.16"]
    print(f"\nRAFT throughput: tiny Qwen2.5-Omni thinker ({sum(p.numel() for p in base.model.parameters()):,} params), "
          f"B={cfg.batch_size} prompts x K={cfg.k}, {cfg.max_new_tokens} new tokens, fp32, 1 thread")
    print(f"{'trainer':<28}{'s/step':>10}{'prompts/s':>12}{'gen tok/s':>12}{'median s/step':>15}")
    for name in ("raft (ours, RRO step)", "raft, per-prompt calls", "TRL GRPOTrainer 1.16"):
        if name not in results:
            continue
        r = results[name]
        print(f"{name:<28}{r['s_per_step']:>10.3f}{r['prompts_per_s']:>12.2f}{r['gen_tok_per_s']:>12.0f}"
              f"{r['median_s_per_step']:>15.3f}")
    ratio = ours["prompts_per_s"] / trl["prompts_per_s"]
    results["ours_over_trl_median"] = trl["median_s_per_step"] / ours["median_s_per_step"]
    print(f"ours / TRL prompts/s: {ratio:.2f}x on the mean step, {results['ours_over_trl_median']:.2f}x on the "
          f"median step (target >= 1.0)")
    if "reward stage" in results:
        _print_reward(results["reward stage"])
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    results["ours_over_trl"] = ratio
    results["load_average_1_5_15_after"] = list(os.getloadavg())
    (out / args.out).write_text(json.dumps(results, indent=1))
    return 0


def corpus_windows(n: int, span_s: float) -> list[dict]:
    """``n`` real-speech windows of the committed corpus (audio of each scene, cut every ``span_s``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from raft_mechanism import build_from_manifest

    _, scenes = build_from_manifest(span_s)
    out = []
    for j in range(8):
        for c in scenes.values():
            start = c["start_s"] + j * span_s
            if start + span_s <= c["end_s"] and Path(c["audio_uri"] or c["media_uri"]).exists():
                out.append({**c, "clip_id": f"{c['clip_id']}@{j}", "start_s": start, "end_s": start + span_s,
                            "media_uri": c["audio_uri"] or c["media_uri"]})
    return out[:n]


def _time(rollout, items, reset: bool) -> tuple[float, list]:
    if reset:
        rollout.reset()
    t0 = time.perf_counter()
    res = rollout.score(items)
    return time.perf_counter() - t0, res


def _print_reward(rs: dict) -> None:
    print(f"reward stage, {rs['items']} candidates over {rs['clips']} windows of {rs['span_s']:.0f} s "
          f"(verify: {', '.join(rs['verify'])}):")
    for name in ("cold", "warm", "metadata"):
        r = rs[name]
        print(f"  {name:<9} serial {r['serial_s']:.3f} s, actor pool of 2 {r['pool_s']:.3f} s -> {r['speedup']:.2f}x"
              + (" (target >= 1.7)" if name == "cold" else ""))


def reward_stage(cfg, n_items, n_clips=16, span_s=4.0, repeats=3):
    """Score ``n_items`` candidates over ``n_clips`` real-speech windows, serially and through a pool of 2
    actors, in three regimes: (1) cold verification (diarize + transcribe run once per window, inside the
    process that scores it), (2) warm (perception cached from (1)), (3) metadata only (verify off).
    Perception backends are loaded by a warm-up window outside the timed set; best of ``repeats``."""
    import ray

    from raft.rollout import slim_clips

    wins = corpus_windows(n_clips + 1, span_s)
    warm_clip, timed = wins[0], wins[1:]
    table = slim_clips(wins)
    weights, opts = reward_settings(cfg)
    texts = ["plan: diarize\nact: diarize transcribe\nreflect: they send the report after lunch\nanswer: [[{a}, {b}]]",
             "answer: [[{a}, {c}]]", "garbage ###", "plan: transcribe\nact: transcribe\nreflect: ok\nanswer: the report"]
    items = []
    for i in range(n_items):
        c = timed[i % len(timed)]
        s0 = c["start_s"]
        t = texts[i % 4].format(a=round(s0 + 0.5, 1), b=round(s0 + 1.5 + (i % 7) * 0.3, 1), c=round(s0 + 3.5, 1))
        items.append(RewardItem(f"s{i}", "STG", [c["clip_id"]], t, [], "", [(s0 + 0.5, s0 + 2.5)]))
    verify = {"verify": ["diarization", "speech"], "verify_span_s": None}
    out = {"items": n_items, "clips": len(timed), "span_s": span_s, "verify": verify["verify"]}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for name, kw in (("cold", verify), ("metadata", {})):
            serial = SerialRollout(table, weights, opts, **kw)
            pool = ActorPoolRollout(table, weights, opts, n=2, num_cpus=0.5, **kw)
            serial.warm(warm_clip["clip_id"])
            pool.warm(warm_clip["clip_id"])
            pool.score(items[:8])
            cold = []
            for _ in range(repeats):
                ts, a = _time(serial, items, reset=True)
                tp, b = _time(pool, items, reset=True)
                assert [(r.total, r.components) for r in a] == [(r.total, r.components) for r in b]
                cold.append((ts, tp))
            ts, tp = min(c[0] for c in cold), min(c[1] for c in cold)
            out[name] = {"serial_s": ts, "pool_s": tp, "speedup": ts / tp}
            if kw:
                warm = [(_time(serial, items, False)[0], _time(pool, items, False)[0]) for _ in range(repeats)]
                ts, tp = min(w[0] for w in warm), min(w[1] for w in warm)
                out["warm"] = {"serial_s": ts, "pool_s": tp, "speedup": ts / tp, "tool_calls": pool.tool_calls()}
            pool.shutdown()
    finally:
        ray.shutdown()
    return {"reward stage": out}


if __name__ == "__main__":
    sys.exit(main())
