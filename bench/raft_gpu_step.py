"""One RRO step of a Qwen2.5-Omni-7B-shaped thinker with random weights, bf16, one GPU, with SRA.

The step is the trainer's own (``raft.objective.raft_loss``): K candidates per prompt sampled with
``generate``, rewards through ``SerialRollout``, one batched forward over [y*, y_1..y_K], the RRO,
alignment and temporal terms, backward, and AdamW over theta_cross only. Ray Train and DeepSpeed
are left out, because the GPU machine's image has neither and one GPU needs no data parallelism.

Prompts carry real-shaped media: audio (Whisper mels, 25 tokens/s) and video frames (Qwen2-VL
patches), plus a guided-mode text prompt. Weights are random, so rewards and losses mean nothing;
the point is time, memory and arithmetic rate on the production shape.

It prints, per configuration: step time (median of the timed steps) and its phases, peak memory,
tokens per second, FLOPs executed per step (counted by ``torch.utils.flop_counter`` over one extra
step) and MFU against the H100's bf16 dense datasheet peak and against a matmul measured in the
same run. ``--shape tiny`` runs the same code on CPU in seconds (tests the script).

    python bench/raft_gpu_step.py [--shape tiny|7b] [--steps 3] [--out DIR]     # 7b: GPU only, asked for explicitly
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from omni.processor import OmniProcessor  # noqa: E402
from raft.config import SRAConfig, TinyModelConfig, TrainConfig  # noqa: E402
from raft.model import MELS, MERGE, PATCH, OmniPolicy, tiny_thinker_config  # noqa: E402
from raft.objective import EncodedPrompt, raft_loss  # noqa: E402
from raft.rollout import SerialRollout, reward_settings  # noqa: E402
from raft.sra import apply_sra  # noqa: E402

# Qwen/Qwen2.5-Omni-7B thinker_config (its config.json), the fields that set compute and memory.
QWEN25_OMNI_7B = {
    "lm": TinyModelConfig(hidden_size=3584, num_layers=28, num_heads=28, num_kv_heads=4, intermediate_size=18944,
                          audio_d_model=1280, audio_layers=32, vision_hidden=1280, vision_depth=32),
    "text_config": {"vocab_size": 152064, "max_position_embeddings": 32768, "tie_word_embeddings": False},
    "audio_config": {"encoder_attention_heads": 20, "encoder_ffn_dim": 5120, "n_window": 100},
    "vision_config": {"num_heads": 16, "intermediate_size": 3420, "fullatt_block_indexes": [7, 15, 23, 31]},
}
H100_BF16_DENSE_TFLOPS = 989.4  # NVIDIA H100 SXM datasheet, dense (no sparsity)

STG_Q = ("When does the speaker in the red shirt speak? Give intervals in seconds as JSON.\n"
         "Cues:\n{cues}\nanswer with plan: act: reflect: answer:")


def build_model(shape: str, proc: OmniProcessor, device: str, dtype: torch.dtype):
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    spec = QWEN25_OMNI_7B if shape == "7b" else {"lm": TinyModelConfig()}
    cfg = tiny_thinker_config(spec["lm"], proc)
    for sub in ("text_config", "audio_config", "vision_config"):
        for k, v in spec.get(sub, {}).items():
            setattr(getattr(cfg, sub), k, v)
    if "text_config" in spec:
        cfg.tie_word_embeddings = False
    torch.manual_seed(0)
    # random init directly on the device: 9B parameters initialised on a CPU would take minutes
    with torch.device(device):
        model = Qwen2_5OmniThinkerForConditionalGeneration._from_config(cfg, dtype=dtype)
    return model


def make_batch(policy: OmniPolicy, n: int, audio_s: float, frames: int, frame_size: int) -> list[EncodedPrompt]:
    from eval.prompting import SYSTEM
    from raft.data import Prompt

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        lines = [(f"[{2 * j}.0-{2 * j + 1.5}] spk{j % 3}: we should agree on the budget this week", 2.0 * j,
                  2.0 * j + 1.5) for j in range(int(audio_s // 2))]
        text = STG_Q.format(cues="\n".join(line for line, _, _ in lines))
        sample = {"sample_id": f"gpu{i}", "task": "STG", "clip_ids": [], "options": [],
                  "answer": "[[2.0, 3.5]]", "answer_intervals": [{"start": 2.0, "end": 3.5}]}
        prompt = Prompt(sample, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}], lines,
                        "plan: diarize\nact: diarize\nreflect: ok\nanswer: [[2.0, 3.5]]", {"start_s": 0.0, "end_s": audio_s})
        audio = (0.1 * rng.standard_normal(int(audio_s * 16000))).astype(np.float32)
        imgs = [(audio_s * (f + 0.5) / frames, rng.integers(0, 255, (frame_size, frame_size, 3), dtype=np.uint8))
                for f in range(frames)]
        enc = policy.processor.encode(text, SYSTEM, audio, imgs, lines)
        out.append(EncodedPrompt(prompt, enc, audio_s, policy.reference_ids(prompt.reference)))
    return out


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def one_step(policy, batch, cfg, rollout, opt, device):
    sync(device)
    t0 = time.perf_counter()
    loss, m = raft_loss(policy, batch, cfg, rollout)
    t1 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sync(device)
    t2 = time.perf_counter()
    m["time/step_s"] = t2 - t0
    m["time/backward_opt_s"] = t2 - t1
    return m


def matmul_tflops(device: str) -> float | None:
    if device != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    sync(device)
    return 2 * 8192**3 * 10 / (time.perf_counter() - t0) / 1e12


def _patch_gqa_flop_count() -> None:
    """torch < 2.12's FlopCounterMode rejects grouped-query attention (key/value with fewer heads than the
    query), which the thinker's sdpa call uses. Its FLOPs equal those of the query-head-count attention,
    because the kernel broadcasts the key/value heads, so the shapes are widened before counting."""
    from torch.utils import flop_counter as fc

    def widen(fn):
        def counted(*shapes):
            *head, q, k, v = shapes
            if k[1] != q[1]:
                k, v = (k[0], q[1], *k[2:]), (v[0], q[1], *v[2:])
            return fn(*head, q, k, v)
        return counted

    fc.sdpa_flop_count = widen(fc.sdpa_flop_count)
    fc.sdpa_backward_flop_count = widen(fc.sdpa_backward_flop_count)


def count_flops(policy, batch, cfg, rollout, opt, device) -> dict:
    """FLOPs executed by one step (with recompute when checkpointing), and by candidate sampling alone."""
    from torch.utils.flop_counter import FlopCounterMode

    from raft.objective import sample_candidates

    try:
        step, gen = FlopCounterMode(display=False), FlopCounterMode(display=False)
        with step:
            one_step(policy, batch, cfg, rollout, opt, device)
        with gen:
            sample_candidates(policy, batch, cfg)
        return {"flops_per_step": step.get_total_flops(), "flops_generate": gen.get_total_flops()}
    except Exception as exc:  # the timing rows stand without a FLOP count
        return {"flops_per_step": None, "flops_generate": None, "flop_count_error": repr(exc)[:300]}


def run_config(policy, name, b, k, new_tokens, audio_s, frames, frame_size, ckpt, steps, device, tflops_meas):
    m = policy.model
    # transformers 5.x renamed gradient_checkpointing_* to activation_checkpointing_*; accept both
    enable = getattr(m, "activation_checkpointing_enable", None) or m.gradient_checkpointing_enable
    disable = getattr(m, "activation_checkpointing_disable", None) or m.gradient_checkpointing_disable
    if ckpt:
        if hasattr(m, "activation_checkpointing_enable"):
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        disable()
    cfg = TrainConfig(k=k, batch_size=b, max_new_tokens=new_tokens, max_audio_s=audio_s, num_frames=frames,
                      frame_size=frame_size, dtype="bfloat16", alpha=0.1, lambda_align=1.0)
    rollout = SerialRollout({}, *reward_settings(cfg))
    batch = make_batch(policy, b, audio_s, frames, frame_size)
    params = [p for p in policy.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, fused=device == "cuda")
    watched = params[-1].detach().clone()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    ms = [one_step(policy, batch, cfg, rollout, opt, device) for _ in range(steps + 1)][1:]  # first: warm-up
    peak_gb = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    fl = count_flops(policy, batch, cfg, rollout, opt, device)
    step_s = statistics.median(m["time/step_s"] for m in ms)
    prompt_tok = sum(ep.enc.length for ep in batch)
    gen_tok = statistics.median(m["gen/tokens"] for m in ms)
    # tokens through the scoring forward/backward: each prompt once per row ([y*, y_1..y_K]) + continuations
    scored_tok = prompt_tok * (k + 1) + gen_tok + sum(len(ep.ref_ids) for ep in batch)
    total_flops = fl["flops_per_step"] or float("nan")
    row = {
        "config": name, "B": b, "K": k, "new_tokens": new_tokens, "grad_ckpt": ckpt,
        "prompt_tokens_per_prompt": prompt_tok / b, "step_s_median": step_s,
        "step_s_all": [m["time/step_s"] for m in ms],
        "generate_s": statistics.median(m["time/generate_s"] for m in ms),
        "reward_s": statistics.median(m["time/reward_s"] for m in ms),
        "forward_s": statistics.median(m["time/forward_s"] for m in ms),
        "backward_opt_s": statistics.median(m["time/backward_opt_s"] for m in ms),
        "peak_mem_gib": peak_gb, "generated_tokens": gen_tok, "scored_tokens": scored_tok,
        "gen_tok_per_s": gen_tok / step_s, "scored_tok_per_s": scored_tok / step_s,
        "prompts_per_s": b / step_s, **fl,
        "achieved_tflops": total_flops / step_s / 1e12,
        "mfu_vs_datasheet": total_flops / step_s / 1e12 / H100_BF16_DENSE_TFLOPS,
        "mfu_vs_measured_matmul": (total_flops / step_s / 1e12 / tflops_meas) if tflops_meas else None,
        "loss_total": ms[-1]["loss/total"], "ess": ms[-1].get("rro/ess"),
        "theta_cross_changed": bool((params[-1].detach() != watched).any()),
    }
    del opt
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    # tiny by default, so `make bench` on a CPU machine neither builds an 8.9 B-parameter fp32 model nor
    # touches the GPU figures (each shape writes its own JSON).
    ap.add_argument("--shape", choices=["7b", "tiny"], default="tiny")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per configuration (after one warm-up)")
    ap.add_argument("--out", default=os.environ.get("OUT", "bench/results"))
    args = ap.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.shape == "7b" and device != "cuda":
        ap.error("--shape 7b needs a CUDA GPU (torch.cuda.is_available() is False here); --shape tiny runs on CPU")
    _patch_gqa_flop_count()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    t0 = time.perf_counter()
    frame_size = 336 if args.shape == "7b" else 56
    proc = OmniProcessor.tiny(1024, MELS, PATCH, MERGE, frame_size, 30.0)
    model = build_model(args.shape, proc, device, dtype)
    policy = OmniPolicy(model, proc)
    model, rep = apply_sra(model, SRAConfig())  # the default preset; DESIGN §7 gives its fraction per shape
    build_s = time.perf_counter() - t0
    tflops = matmul_tflops(device)
    info = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
            "shape": args.shape, "params": rep["sra/total_params"], "trainable": rep["sra/trainable_params"],
            "trainable_fraction": rep["sra/trainable_fraction"], "build_s": build_s,
            "matmul_bf16_tflops_measured": tflops}
    print(json.dumps(info))
    # (name, B, K, new tokens, audio s, frames, gradient checkpointing)
    plan = [("B1xK4", 1, 4, 64, 10.0, 4, False), ("B2xK4-ckpt", 2, 4, 64, 10.0, 4, True),
            ("B4xK8-ckpt", 4, 8, 64, 10.0, 4, True)]
    if args.shape == "tiny":
        plan = [(n, b, k, 8, 2.0, 2, c) for n, b, k, _, _, _, c in plan[:2]]
    rows = []
    for name, b, k, nt, audio_s, frames, ckpt in plan:
        try:
            rows.append(run_config(policy, name, b, k, nt, audio_s, frames, frame_size, ckpt, args.steps, device,
                                   tflops))
        except torch.OutOfMemoryError as exc:  # a bigger configuration may not fit; say so and go on
            rows.append({"config": name, "error": f"OOM: {str(exc)[:200]}"})
            torch.cuda.empty_cache()
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"raft_gpu_step_{args.shape}.json").write_text(json.dumps({"info": info, "rows": rows}, indent=1))
    print(f"\nOne RRO step, Qwen2.5-Omni-7B-shaped thinker ({info['params'] / 1e9:.2f}B params, random weights), "
          f"{dtype}, {info['device']}, SRA {100 * info['trainable_fraction']:.2f}% trainable; "
          f"bf16 matmul measured {tflops or float('nan'):.0f} TFLOP/s")
    hdr = (f"{'config':<12}{'prompt tok':>11}{'step s':>8}{'gen s':>7}{'fwd s':>7}{'bwd+opt s':>10}{'peak GiB':>9}"
           f"{'gen tok/s':>10}{'scored tok/s':>13}{'TFLOP/s':>9}{'MFU(989)':>9}{'MFU(meas)':>10}")
    print(hdr)
    print("(TFLOP/s and MFU count the FLOPs executed; with -ckpt they include the recomputed forward of checkpointing)")
    for r in rows:
        if "error" in r:
            print(f"{r['config']:<12} {r['error'][:100]}")
            continue
        mm = r["mfu_vs_measured_matmul"]
        print(f"{r['config']:<12}{r['prompt_tokens_per_prompt']:>11.0f}{r['step_s_median']:>8.2f}{r['generate_s']:>7.2f}"
              f"{r['forward_s']:>7.2f}{r['backward_opt_s']:>10.2f}{r['peak_mem_gib']:>9.1f}{r['gen_tok_per_s']:>10.0f}"
              f"{r['scored_tok_per_s']:>13.0f}{r['achieved_tflops']:>9.1f}{100 * r['mfu_vs_datasheet']:>8.1f}%"
              f"{(100 * mm if mm else float('nan')):>9.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
