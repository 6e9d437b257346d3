"""A worker node lost mid-job on a real multi-node Ray cluster: every record is written exactly once.

bench/chaos.py's ``sink_node_kill``, small: a ``ray.cluster_utils.Cluster`` of 2 nodes (head and worker,
1 CPU each), synthetic clip rows through a 2-actor pool (one actor per node) into curation's own
``write_batch`` sink; once both actors are up and 2 records are written (the others wait for the kill),
the worker node is removed without grace. Ray Data reruns the lost work on the head; the sink's part
files, named by the hash of their clip ids and written atomically, must hold each record once. The
bench runs it on 3 nodes with 200 records.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import chaos  # noqa: E402

pytestmark = pytest.mark.slow


def test_worker_node_lost_mid_job_every_record_written_once(tmp_path):
    import ray

    # 2 nodes (a head and a worker of 1 CPU each, one pool actor on each): a third raylet costs CI seconds
    cluster, workers = chaos.start_cluster(workers=1, cpus=1, head_cpus=1, detect_s=1.5)  # dead node declared fast
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        r = chaos.sink_node_kill(cluster, workers, str(tmp_path), n_clips=12, kill_after=2, hold_s=0.05)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert r["node_killed"] and r["actor_nodes_before_kill"] == 2, r  # the pool spanned both nodes when one went
    assert (r["written"], r["lost"], r["duplicated"], r["unexpected"]) == (12, 0, 0, 0), r
