"""Scoring B x K candidates: a Ray actor pool, and a serial fallback that is its reference.

Both paths run the same :class:`RewardScorer` over the same items, so their results are
identical (tested). A scorer reads the clip table (put in the object store once and shared by all
actors) and, for the components named in ``train.verify``, re-runs perception on each clip's span
(:mod:`raft.verify`), cached per (tool, clip, span) inside the process that ran it.

The pool sends work by clip, not by candidate: the candidates of one clip (all K of a prompt,
and every prompt on that clip) go to one actor in one call, so a clip's perception runs once, in
one actor. A clip goes back to the actor that already holds its perception (affinity); new clips
go to the least-loaded actor, heaviest first (cost = seconds of media to perceive, or item count
when nothing is verified). Results come back in the order of the items. The pool's handles
pickle, so the driver can build one pool and hand it to every Ray Train worker.
"""

from __future__ import annotations

from raft.config import TrainConfig
from raft.rewards import RewardItem, RewardOptions, RewardResult, score_item
from raft.verify import Verifier

# Only what the reward components (and the verifying tools) read travels to the actors.
CLIP_COLUMNS = ("clip_id", "media_uri", "audio_uri", "start_s", "end_s", "pred_turns", "pred_transcript",
                "pred_face_tracks", "pred_active_speaker", "pred_speech")


def reward_settings(cfg: TrainConfig) -> tuple[dict[str, float], RewardOptions]:
    return dict(cfg.rewards), RewardOptions(sync_offset_tol_s=cfg.sync_offset_tol_s)


def verify_settings(cfg: TrainConfig, perception: dict | None = None) -> dict:
    """Keyword arguments of :class:`RewardScorer` for verification; components with weight 0 are skipped."""
    weights = cfg.rewards
    return {"verify": [c for c in cfg.verify if weights.get(c)], "perception": perception,
            "verify_span_s": cfg.verify_span_s}


def slim_clips(clips: list[dict]) -> dict[str, dict]:
    return {c["clip_id"]: {k: c.get(k) for k in CLIP_COLUMNS} for c in clips}


class RewardScorer:
    """Scores candidates against the clip table; the unit both the serial path and each actor run."""

    def __init__(self, clips: dict[str, dict], weights: dict[str, float], opts: RewardOptions,
                 verify: list[str] | tuple[str, ...] = (), perception: dict | None = None,
                 verify_span_s: float | None = None):
        self.clips, self.weights, self.opts = clips, weights, opts
        self.verifier = Verifier(verify, perception, verify_span_s)

    def score(self, items: list[RewardItem]) -> list[RewardResult]:
        return [score_item(it, [self.verifier.view(self.clips[c]) for c in it.clip_ids if c in self.clips],
                           self.weights, self.opts)
                for it in items]

    def warm(self, clip_id: str) -> int:
        """Load the perception backends by verifying one clip, then forget it; returns tool runs."""
        self.verifier.view(self.clips[clip_id])
        self.verifier.clear()
        return self.verifier.calls

    def reset(self) -> None:
        """Forget cached perception (benches time cold scoring with it)."""
        self.verifier.clear()

    def tool_calls(self) -> int:
        """Perception tool runs so far in this process (cache misses)."""
        return self.verifier.calls


class SerialRollout:
    """In-process scoring (reward_actors=0, and the reference for the pool)."""

    def __init__(self, clips: dict[str, dict], weights: dict[str, float], opts: RewardOptions, **verify):
        self.scorer = RewardScorer(clips, weights, opts, **verify)

    def score(self, items: list[RewardItem]) -> list[RewardResult]:
        return self.scorer.score(items)

    def warm(self, clip_id: str) -> None:
        self.scorer.warm(clip_id)

    def reset(self) -> None:
        self.scorer.reset()


def _clip_key(item: RewardItem) -> tuple[str, ...]:
    return tuple(item.clip_ids)


class ActorPoolRollout:
    """``n`` Ray actors, each a RewardScorer; ``score`` sends each actor whole clips and gathers in order."""

    def __init__(self, clips: dict[str, dict], weights: dict[str, float], opts: RewardOptions, n: int,
                 num_cpus: float = 0.25, **verify):
        import ray

        actor_cls = ray.remote(num_cpus=num_cpus)(RewardScorer)
        clips_ref = ray.put(clips)
        self.actors = [actor_cls.remote(clips_ref, weights, opts, **verify) for _ in range(n)]
        self.verifying = bool(verify.get("verify"))
        self.span_s = verify.get("verify_span_s")
        self.clip_spans = {cid: float(c["end_s"]) - float(c["start_s"]) for cid, c in clips.items()}
        self.home: dict[tuple[str, ...], int] = {}  # clip key -> actor that holds its perception

    def _cost(self, key: tuple[str, ...], n_items: int) -> float:
        if not self.verifying or key in self.home:
            return 1e-3 * n_items
        spans = [self.clip_spans.get(c, 0.0) for c in key]
        return sum(min(s, self.span_s) if self.span_s else s for s in spans) + 1e-3 * n_items

    def assign(self, items: list[RewardItem]) -> list[list[int]]:
        """Item indices per actor: grouped by clip, sticky to a clip's actor, else least-loaded first."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, it in enumerate(items):
            groups.setdefault(_clip_key(it), []).append(i)
        loads = [0.0] * len(self.actors)
        parts: list[list[int]] = [[] for _ in self.actors]
        for key, idx in sorted(groups.items(), key=lambda kv: (-self._cost(kv[0], len(kv[1])), kv[0])):
            cost = self._cost(key, len(idx))
            a = self.home.get(key)
            if a is None:
                a = min(range(len(loads)), key=lambda j: (loads[j], j))
                if self.verifying:
                    self.home[key] = a
            loads[a] += cost
            parts[a].extend(idx)
        return parts

    def score(self, items: list[RewardItem]) -> list[RewardResult]:
        import ray

        parts = self.assign(items)
        refs = [(p, a.score.remote([items[i] for i in p])) for a, p in zip(self.actors, parts, strict=True) if p]
        out: list[RewardResult | None] = [None] * len(items)
        for p, ref in refs:
            for i, r in zip(p, ray.get(ref), strict=True):
                out[i] = r
        return out  # type: ignore[return-value]

    def warm(self, clip_id: str) -> None:
        import ray

        ray.get([a.warm.remote(clip_id) for a in self.actors])

    def reset(self) -> None:
        import ray

        ray.get([a.reset.remote() for a in self.actors])
        self.home.clear()

    def tool_calls(self) -> list[int]:
        import ray

        return ray.get([a.tool_calls.remote() for a in self.actors])

    def shutdown(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)


def make_rollout(cfg: TrainConfig, clips: list[dict], perception: dict | None = None
                 ) -> SerialRollout | ActorPoolRollout:
    weights, opts = reward_settings(cfg)
    table = slim_clips(clips)
    verify = verify_settings(cfg, perception)
    if cfg.reward_actors > 0:
        return ActorPoolRollout(table, weights, opts, cfg.reward_actors, cfg.reward_actor_cpus, **verify)
    return SerialRollout(table, weights, opts, **verify)
