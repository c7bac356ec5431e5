"""The pids-cgroup sweep: empty groups of ended CASA processes go, a fresh one stays."""

import os
import time
from pathlib import Path

from calibration import limits


def test_sweep_leaves_a_fresh_empty_group(tmp_path, monkeypatch):
    # A plain folder stands in for the cgroup parent (rmdir of a real cgroup ignores its files).
    removed: list[str] = []
    monkeypatch.setattr(Path, "rmdir", lambda self: removed.append(self.name))
    old, fresh, busy = (tmp_path / f"{limits.CGROUP_PREFIX}{n}" for n in ("1-old", "2-fresh", "3-busy"))
    for group, procs in ((old, ""), (fresh, ""), (busy, "4242\n")):
        group.mkdir()
        (group / "cgroup.procs").write_text(procs)
    long_ago = time.time() - 2 * limits.SWEEP_MIN_AGE_SECONDS
    for group in (old, busy):
        os.utime(group, (long_ago, long_ago))

    limits._sweep_empty(tmp_path)

    # the fresh one may be another worker's, its CASA not yet joined; the busy one has a process
    assert removed == [old.name]
