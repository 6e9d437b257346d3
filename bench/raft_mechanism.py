"""The RAFT mechanism at small scale: SFT, then RAFT vs more SFT; SRA (cross_modal) vs LoRA 5%; with and without L_temp.

Samples: curation's ``samples.parquet`` + ``clips.parquet`` when ``--curated DIR`` names a finished
curation run, else built from the sample corpus's ground truth (``data/corpus/manifest.json``): per
scene, a letter task "who speaks first?" (options are the scene's speaker names) and an STG task
"when does <name> speak?", with pred_* cues and rewards from the same ground truth (an oracle
perception). Scenes are split train/test by scene.

Protocol (one process, torch threads 1, no Ray, to fit ~10 minutes on 2 shared cores):
1. one supervised warm start of the tiny random model (all parameters, L_align only), evaluated:
   the "SFT" baseline;
2. four branches from that same checkpoint, the same number of steps each, on theta_cross only:
   more SFT (control), RAFT with SRA, RAFT with LoRA 5%, RAFT with SRA and no L_temp
   (SRA: the default preset, cross_modal; each branch's trainable fraction is computed and printed);
3. each evaluated on the held-out split: mean reward, letter accuracy, STG tIoU (K samples per prompt).

    .venv/bin/python bench/raft_mechanism.py [--sft-steps 40] [--raft-steps 20] [--curated DIR]
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from raft.config import SRAConfig, TrainConfig  # noqa: E402
from raft.data import build_prompt  # noqa: E402
from raft.model import OmniPolicy  # noqa: E402
from raft.objective import encode_prompt, raft_loss, reward_item  # noqa: E402
from raft.rollout import SerialRollout, reward_settings, slim_clips  # noqa: E402
from raft.sra import apply_sra  # noqa: E402

CORPUS = Path("data/corpus")
SRA = SRAConfig()  # the default preset (cross_modal); its fraction at the tiny shape is in DESIGN §7
LORA_5 = SRAConfig(method="lora", lora_rank=20, top_layers=2)  # rank 20: about 5% of the tiny model


def _val(v):
    return ast.literal_eval(v) if isinstance(v, str) and v[:1] in "[{" else v


def build_from_manifest(max_audio_s: float):
    man = json.loads((CORPUS / "manifest.json").read_text())
    names = {i["id"]: i["name"] for i in man["identities"]}
    clips, samples = {}, []
    for n, sc in enumerate(man["scenes"]):
        media = _val(sc["media"])
        uri = media.get("video") or media.get("audio")
        turns = _val(sc["turns"])
        if not uri or not turns:
            continue
        start = float(sc["start"])
        cid = sc["scene_id"]
        pred = [{"start": t["start"], "end": t["end"], "speaker": names.get(t["speaker"], t["speaker"]),
                 "text": t["text"]} for t in turns]
        clips[cid] = {"clip_id": cid, "start_s": start, "end_s": float(sc["end"]), "media_uri": str(CORPUS / uri),
                      "audio_uri": str(CORPUS / media["audio"]) if media.get("audio") else None, "fps": 25.0,
                      "pred_turns": pred, "pred_transcript": [{**p, "words": []} for p in pred],
                      "pred_face_tracks": [], "pred_active_speaker": [], "pred_speech": []}
        split = "test" if n % 3 == 2 else "train"
        spk = sorted({p["speaker"] for p in pred})
        first = min(pred, key=lambda p: p["start"])["speaker"]
        samples.append({"sample_id": f"{cid}-first", "task": "NSP", "split": split, "clip_ids": [cid],
                        "question": "Who speaks first?", "options": spk, "answer": chr(65 + spk.index(first)),
                        "answer_intervals": [], "references": [], "required_tools": ["diarize"]})
        target = spk[n % len(spk)]
        ivs = [{"start": p["start"], "end": p["end"]} for p in pred
               if p["speaker"] == target and p["start"] < start + max_audio_s]
        if ivs:
            # STG's one reference format: `answer` is JSON [[start, end], ...] in clip-relative seconds
            # (what the question asks for); `answer_intervals` keep media-file seconds.
            rel = [[round(i["start"] - start, 2), round(i["end"] - start, 2)] for i in ivs]
            samples.append({"sample_id": f"{cid}-stg", "task": "STG", "split": split, "clip_ids": [cid],
                            "question": f"When does {target} speak?", "options": [], "answer": json.dumps(rel),
                            "answer_intervals": ivs, "references": [], "required_tools": ["diarize"]})
    return samples, clips


def encode_all(policy, samples, clips, cfg):
    from raft.data import load_media

    out = []
    for s in samples:
        p = build_prompt(s, clips, cfg.prompt_mode)
        out.append(encode_prompt(policy, p, *load_media(p.clip, cfg), cfg))
    return out


def load_curated(run_dir: str, cfg):
    """Curation's tables (``samples.parquet`` and ``clips.parquet`` or the ``clips/`` folder)."""
    from raft.data import load_tables

    d = Path(run_dir)
    clips = d / "clips.parquet" if (d / "clips.parquet").exists() else d / "clips"
    train, table = load_tables(cfg, str(d / "samples.parquet"), str(clips))
    test, _ = load_tables(cfg, str(d / "samples.parquet"), str(clips), split="test")
    return train + test, table


def evaluate(policy, data, cfg, rollout, k):
    """Mean reward, letter accuracy (tasks with options) and STG tIoU over ``k`` sampled answers
    (temperature 0.7) per held-out prompt; free-text tasks count in the reward only."""
    torch.manual_seed(123)
    rewards, acc, tiou = [], [], []
    for ep in data:
        cands = policy.generate(ep.enc, k, cfg.max_new_tokens, temperature=0.7)
        res = rollout.score([reward_item(ep.prompt, policy.decode(c)) for c in cands])
        rewards += [r.total for r in res]
        ans = [r.components.get("answer") or 0.0 for r in res]
        if ep.prompt.sample.get("options"):
            acc.extend(ans)
        elif ep.prompt.sample["task"] == "STG":
            tiou.extend(ans)
    return {"reward": float(np.mean(rewards)), "acc": float(np.mean(acc)) if acc else float("nan"),
            "stg_tiou": float(np.mean(tiou)) if tiou else float("nan")}


def train(policy, data, cfg, rollout, steps, sft, lr):
    opt = torch.optim.AdamW([p for p in policy.model.parameters() if p.requires_grad], lr=lr)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    hist = []
    for _ in range(steps):
        batch = [data[i] for i in rng.choice(len(data), cfg.batch_size, replace=False)]
        loss, m = raft_loss(policy, batch, cfg, rollout, sft=sft)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(m)
    n = max(1, min(10, steps // 2))
    avg = lambda ms, k: float(np.mean([x[k] for x in ms])) if ms and k in ms[0] else None  # noqa: E731
    # training-batch reward of the sampled candidates, first vs last n steps (RAFT branches only)
    return {"train_reward_first": avg(hist[:n], "reward/mean"), "train_reward_last": avg(hist[-n:], "reward/mean"),
            "loss_temp_first": avg(hist[:n], "loss/temp"), "loss_temp_last": avg(hist[-n:], "loss/temp")}


def branch(base_model, processor, sra):
    """A copy of the warm-started model with only theta_cross trainable (LoRA: adapters injected)."""
    pol = OmniPolicy(copy.deepcopy(base_model), processor)
    pol.model, rep = apply_sra(pol.model, sra)
    return pol, rep["sra/trainable_fraction"]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sft-steps", type=int, default=40, help="supervised warm start (all parameters)")
    ap.add_argument("--raft-steps", type=int, default=20, help="steps of every branch (SFT control and RAFT)")
    ap.add_argument("--lr", type=float, default=1e-2, help="AdamW lr of theta_cross in the branches")
    ap.add_argument("--alpha", type=float, default=0.01, help="weight of L_temp in the branches that use it")
    ap.add_argument("--temporal-norm", default="l2", choices=["l2", "layernorm", "none"],
                    help="train.temporal_norm: per-step normalisation of f_a, f_v, f_t, f_r inside L_temp")
    ap.add_argument("--out", default="raft_mechanism.json", help="file name under bench/results/")
    ap.add_argument("--eval-k", type=int, default=4, help="sampled answers per held-out prompt")
    ap.add_argument("--curated", default=None, help="a curation run folder (samples.parquet, clips)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    t_start = time.perf_counter()
    cfg = TrainConfig(model_cache_dir=".cache/raft_tiny", k=4, batch_size=2, max_new_tokens=32, lr=3e-3,
                      num_frames=2, max_audio_s=4.0, beta=2.0, alpha=args.alpha,
                      temporal_norm=args.temporal_norm)
    if args.curated:
        samples, clips = load_curated(args.curated, cfg)
        source = f"curation run {args.curated}"
    else:
        samples, clips = build_from_manifest(cfg.max_audio_s)
        source = "data/corpus/manifest.json ground truth (oracle pred_*)"
    rollout = SerialRollout(slim_clips(list(clips.values())), *reward_settings(cfg))
    base = OmniPolicy.build(cfg)
    tr = [s for s in samples if s["split"] == "train"]
    te = [s for s in samples if s["split"] == "test"]
    print(f"{len(tr)} train / {len(te)} test samples from {len(clips)} scenes: {source}", flush=True)
    dtr, dte = encode_all(base, tr, clips, cfg), encode_all(base, te, clips, cfg)

    # 1. supervised warm start, all parameters, L_align only
    warm = OmniPolicy(copy.deepcopy(base.model), base.processor)
    train(warm, dtr, replace(cfg, alpha=0.0), rollout, args.sft_steps, sft=True, lr=cfg.lr)
    sft_eval = evaluate(warm, dte, cfg, rollout, args.eval_k)
    print(f"SFT warm start ({args.sft_steps} steps): {sft_eval}  [{time.perf_counter() - t_start:.0f} s]", flush=True)

    # 2. branches at equal steps from the same checkpoint
    settings = [("more SFT (control), SRA + L_temp", SRA, cfg.alpha, True),
                ("RAFT, SRA + L_temp", SRA, cfg.alpha, False),
                ("RAFT, LoRA 5% + L_temp", LORA_5, cfg.alpha, False),
                ("RAFT, SRA, no L_temp", SRA, 0.0, False)]
    rows = []
    for name, sra, alpha, sft in settings:
        pol, frac = branch(warm.model, base.processor, sra)
        c = replace(cfg, sra=sra, alpha=alpha)
        last = train(pol, dtr, c, rollout, args.raft_steps, sft=sft, lr=args.lr)
        after = evaluate(pol, dte, c, rollout, args.eval_k)
        rows.append({"setting": name, "trainable_fraction": frac, "after": after, **last})
        print(f"{name}: {after}  [{time.perf_counter() - t_start:.0f} s]", flush=True)

    print(f"\nheld-out: {len(te)} prompts x {args.eval_k} samples; SFT warm start {args.sft_steps} steps, "
          f"then {args.raft_steps} steps per branch")
    print(f"{'setting':<40}{'trainable':>10}{'reward':>16}{'letter acc':>16}{'STG tIoU':>16}{'train reward':>16}")
    for r in rows:
        a = r["after"]
        tr_r = (f"{r['train_reward_first']:>8.3f}->{r['train_reward_last']:<6.3f}"
                if r["train_reward_first"] is not None else f"{'-':>16}")
        print(f"{r['setting']:<40}{100 * r['trainable_fraction']:>9.2f}%"
              + "".join(f"{sft_eval[k]:>8.3f}->{a[k]:<6.3f}" for k in ("reward", "acc", "stg_tiou")) + tr_r)
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / args.out).write_text(json.dumps(
        {"source": source, "train": len(tr), "test": len(te), "sft_steps": args.sft_steps,
         "raft_steps": args.raft_steps, "lr_theta_cross": args.lr, "alpha": args.alpha,
         "temporal_norm": args.temporal_norm, "eval_k": args.eval_k, "sft": sft_eval,
         "branches": rows, "wall_s": time.perf_counter() - t_start}, indent=1))
    print(f"wall {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
