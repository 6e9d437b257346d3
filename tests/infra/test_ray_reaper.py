"""A private Ray's leftovers are stopped once its driver is SIGKILLed (infra.ray_reaper).

Real processes, no Ray: a stand-in driver, and a stand-in orphan that names the session folder on its
command line and ignores SIGTERM, as Ray's DashboardAgent does after its raylet died."""

from __future__ import annotations

import subprocess
import sys
import time

from infra import ray_reaper

SLEEP = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"


def test_session_processes_are_stopped_once_the_driver_is_killed(tmp_path):
    session = tmp_path / "session_2026-01-01_00-00-00_1"
    (session / "logs").mkdir(parents=True)
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    orphan = subprocess.Popen([sys.executable, "-c", SLEEP, f"--session-dir={session}"], start_new_session=True)
    bystander = subprocess.Popen([sys.executable, "-c", SLEEP, f"--session-dir={session}-other"])
    try:
        reaper = ray_reaper.start(str(session), pid=driver.pid)
        time.sleep(1.0)
        assert orphan.poll() is None and reaper.poll() is None  # nothing is touched while the driver lives
        driver.kill()
        driver.wait()
        assert orphan.wait(timeout=20) != 0  # SIGTERM ignored, then SIGKILLed
        assert reaper.wait(timeout=20) == 0
        assert bystander.poll() is None  # another session's process is left alone
    finally:
        for p in (driver, orphan, bystander):
            p.kill()
