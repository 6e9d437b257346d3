"""Decode, every selected perception stage and the write in one actor: the data-parallel curation pool.

On a small CPU machine one process per stage costs an interpreter and a model load each, and a
clip crosses five actors (and the object store) on its way; with 5 pools on 2 cores the benchmark
measured 1.15x the serial loop with one actor per stage and 0.92x with two. N fused actors each
run a whole clip, so N cores stay busy whatever the stage mix, and clips are handed out one at a
time (``max_tasks_in_flight_per_actor=1``; Ray's default of 2 queues a clip behind a busy actor
while the other may go idle at the end of the run).

Decode-verify runs here too (``decode_batch``, the same function the per-stage layout runs as a
task): the actor that verifies a clip is the one that perceives it, so no separate task pool
competes with the actors for the cores, and a bad file is still quarantined before any stage sees
it. The stages are perception's own actor classes, chained in order, so the columns and per-stage
timings are exactly those of the per-stage pools.

The write runs here as well (``write_batch``: validate, one atomic part file per clip): a write
task pool on 2 cores spread its tasks over several fresh worker processes, each paying about 2 s
of CPU to import Ray Data, pandas and pyarrow, which is CPU taken from the actors; and the clip's
columns never cross the object store. The actor returns only the small stats rows. A part file
holds one clip here, as Ray Data's own writers would for one-clip blocks; ``records_per_file``
applies to the per-stage layout.

Each actor loads its models and runs them once on a synthetic clip (``curate.warm_up``) before it
takes work, and stamps every stats row with ``actor_ready_at`` (epoch seconds when it was ready),
so the run summary can report start-up apart from warm throughput.
"""

from __future__ import annotations

import os
import time

import pandas as pd

from pipelines.curation.decode import decode_batch
from pipelines.curation.records import write_batch


class FusedStages:
    def __init__(self, cfg: dict, stages: list[str], decode: dict | None = None, write: dict | None = None,
                 warm_up: bool = True):
        from perception.actors import STAGES
        from perception.actors import warm_up as run_warm_up

        t0 = time.perf_counter()
        self.actors = [STAGES[name](cfg) for name in stages]
        self.decode = decode
        self.write = write
        self.warm_up_s = run_warm_up([a.stage for a in self.actors]) if warm_up and self.actors else 0.0
        self.load_s = time.perf_counter() - t0
        self.ready_at = time.time()
        self.pid = os.getpid()

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if self.decode is not None:
            batch = decode_batch(batch, **self.decode)  # rows of undecodable media are quarantined and dropped
        for actor in self.actors:
            if batch.empty:
                break
            batch = actor(batch)
        batch = batch.copy()
        batch["actor_ready_at"] = self.ready_at
        batch["actor_load_s"] = self.load_s
        batch["actor_pid"] = self.pid
        return batch if self.write is None else write_batch(batch, **self.write)
