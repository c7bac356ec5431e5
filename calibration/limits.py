"""Resource limits for a CASA process: what one script step may use of the machine.

Two mechanisms, both applied by wrapping the command line (no `preexec_fn`, which is unsafe
in a threaded worker):
- rlimits, set by util-linux `prlimit` before it execs the sandbox: address space, CPU time,
  file size, open files, no core dumps, and processes when the worker is not root;
- a pids cgroup per process where the host lets us make one (RLIMIT_NPROC counts per real
  uid, and a root worker's children are exempt from it, so a fork bomb needs the cgroup).

The limits are settings (CASA_LIMIT_*); 0 turns one off.
"""

import os
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings

GIB = 1024**3
CGROUP_PREFIX = "qa2portal-casa-"
# cgroup v1 mounts the pids controller on its own; v2 has one unified tree.
PIDS_CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
# An empty cgroup younger than this may be one another process has just made and its CASA not
# yet joined (two workers starting CASA at once): the sweep leaves it alone.
SWEEP_MIN_AGE_SECONDS = 120.0


def rlimit_argv() -> list[str]:
    """`prlimit --as=... --cpu=... -- ` for the settings in force ([] without prlimit)."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return []
    limits = {
        "--as": settings.CASA_LIMIT_ADDRESS_SPACE_GB * GIB,
        "--cpu": settings.CASA_LIMIT_CPU_SECONDS,
        "--fsize": settings.CASA_LIMIT_FILE_SIZE_GB * GIB,
        "--nofile": settings.CASA_LIMIT_OPEN_FILES,
        "--nproc": settings.CASA_LIMIT_PROCESSES if os.geteuid() != 0 else 0,
    }
    argv = [prlimit, "--core=0"]
    argv += [f"{flag}={int(value)}" for flag, value in limits.items() if value]
    return [*argv, "--"]


def _pids_parent() -> Path | None:
    """A cgroup folder under which we may make children with a pids.max (None: no such luck)."""
    for root in PIDS_CGROUP_ROOTS:
        if root.is_dir() and os.access(root, os.W_OK):
            own = _own_cgroup(root)
            for parent in (own, root):
                if parent is not None and os.access(parent, os.W_OK):
                    return parent
    return None


def _own_cgroup(root: Path) -> Path | None:
    """This process's own cgroup in the hierarchy mounted at `root` (v2 or the v1 pids one)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if (controllers == "" and root.name != "pids") or "pids" in controllers.split(","):
            candidate = root / path.lstrip("/")
            return candidate if candidate.is_dir() else None
    return None


def _sweep_empty(parent: Path) -> None:
    """Remove the cgroups of CASA processes that have ended (a killed worker leaves them).

    Not a fresh one: between its mkdir and its CASA joining it, another worker's group is
    empty too, and removing it fails that CASA ("cgroup.procs: Directory nonexistent").
    """
    now = time.time()
    for child in parent.glob(f"{CGROUP_PREFIX}*"):
        try:
            if now - child.stat().st_mtime < SWEEP_MIN_AGE_SECONDS:
                continue
            if not (child / "cgroup.procs").read_text().strip():
                child.rmdir()
        except OSError:
            continue


def pids_cgroup_argv() -> list[str]:
    """`sh -c 'echo $$ > cgroup.procs; exec "$@"'` joining a fresh pids cgroup ([] if none).

    The wrapper joins before it execs anything, so every process the step starts is counted.
    """
    limit = settings.CASA_LIMIT_PROCESSES
    parent = _pids_parent() if limit else None
    if parent is None:
        return []
    _sweep_empty(parent)
    group = parent / f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
        if not (group / "pids.max").exists():
            group.rmdir()
            return []
        (group / "pids.max").write_text(str(limit))
    except OSError:
        return []
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs")]


def describe() -> dict[str, object]:
    """The limits in force, for the health page and the worker log."""
    return {
        "address_space_gb": settings.CASA_LIMIT_ADDRESS_SPACE_GB or "unlimited",
        "cpu_seconds": settings.CASA_LIMIT_CPU_SECONDS or "unlimited",
        "file_size_gb": settings.CASA_LIMIT_FILE_SIZE_GB or "unlimited",
        "open_files": settings.CASA_LIMIT_OPEN_FILES or "unlimited",
        "processes": settings.CASA_LIMIT_PROCESSES or "unlimited",
        "processes_enforced_by": "pids cgroup"
        if _pids_parent()
        else ("RLIMIT_NPROC" if os.geteuid() != 0 else "nothing (root worker without a pids cgroup)"),
    }
