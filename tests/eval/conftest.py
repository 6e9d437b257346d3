"""Eval test helpers: the fake tools module is importable here and in Ray workers (PYTHONPATH)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
# Ray Serve replicas are fresh processes: they find fake_tools (and the repo) through PYTHONPATH.
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
