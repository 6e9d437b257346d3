"""All selected perception stages in one actor: a data-parallel alternative to one pool per stage.

On a small CPU machine one process per stage costs a model load and an interpreter each and
pipelines only as well as the slowest stage allows; N fused actors each run every stage on their
own clips (``curate.fuse_stages``). The stages are perception's own actor classes, chained in
order, so the columns and per-stage timings are exactly those of the per-stage pools.
"""

from __future__ import annotations

import pandas as pd


class FusedStages:
    def __init__(self, cfg: dict, stages: list[str]):
        from perception.actors import STAGES

        self.actors = [STAGES[name](cfg) for name in stages]

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        for actor in self.actors:
            batch = actor(batch)
        return batch
