"""The only module that starts CASA.

CASA always runs in a subprocess of a worker (never in the web process, never in the
Celery process itself): CASA can segfault, leaks memory and keeps global state. The child
gets a minimal environment without secrets, the project's site config, one OpenMP thread,
its own process group and a wall-clock limit.
"""

import ctypes
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

KILL_GRACE_SECONDS = 5.0


class CasaUnavailable(RuntimeError):
    """CASA cannot be started or does not import."""


class CasaScriptFailed(RuntimeError):
    """A CASA subprocess did not print the answer it was started for."""


@dataclass(frozen=True)
class CasaResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool

    @property
    def signal(self) -> int | None:
        """The signal that killed the process, if any (negative return code)."""
        return -self.returncode if self.returncode < 0 else None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def casa_python() -> str:
    return settings.CASA_PYTHON or sys.executable


def casa_environment() -> dict[str, str]:
    """A minimal environment: nothing from the web/worker environment leaks in (no secrets)."""
    home = Path(settings.CASA_HOME)
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": f"{Path(casa_python()).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "CASASITECONFIG": str(settings.CASA_SITECONFIG),
        # Without this, two CASA processes on 2 cores oversubscribe and tclean runs 5x slower.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(settings.BASE_DIR),
    }


@functools.cache
def bubblewrap() -> str | None:
    """bwrap's path when it is installed and can make namespaces here, else None."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run(
        [path, "--die-with-parent", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "true"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    return path if probe.returncode == 0 else None


def sandbox_argv(cwd: Path, writable: Sequence[Path]) -> list[str]:
    """bubblewrap around CASA: read-only system, writable run folder, no network, dies with us.

    Empty when sandboxing is off, or unavailable with CASA_SANDBOX=auto.
    """
    mode = settings.CASA_SANDBOX
    if mode == "none":
        return []
    bwrap = bubblewrap()
    if bwrap is None:
        if mode == "bwrap":
            raise CasaUnavailable("CASA_SANDBOX=bwrap but bubblewrap is missing or cannot create namespaces")
        return []
    argv = [bwrap, "--die-with-parent", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev"]
    argv += ["--proc", "/proc", "--tmpfs", "/tmp"]  # noqa: S108 - a private, empty /tmp for CASA
    for path in [cwd, Path(settings.CASA_HOME), *writable]:
        argv += ["--bind", str(path), str(path)]
    return [*argv, "--chdir", str(cwd), "--"]


def die_with_parent() -> None:
    # Without bubblewrap: the kernel kills CASA when the worker process that started it dies.
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def start_casa(
    code: str,
    *,
    cwd: Path,
    args: Sequence[str] = (),
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    sandbox: bool = False,
    writable: Sequence[Path] = (),
) -> subprocess.Popen:
    """Start `python -c code args...` as CASA's interpreter in `cwd`, in a new process group.

    With `sandbox`, the process runs under bubblewrap where available: only `cwd` (and
    `writable`) can be written, there is no network, and it dies with its parent.
    """
    cwd.mkdir(parents=True, exist_ok=True)
    wrapper = sandbox_argv(cwd, writable) if sandbox else []
    return subprocess.Popen(
        [*wrapper, casa_python(), "-c", code, *args],
        cwd=cwd,
        env=casa_environment(),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=None if wrapper else die_with_parent,
    )


def kill_group(proc: subprocess.Popen, grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left after `grace`."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_casa(code: str, *, cwd: Path, timeout: float, args: Sequence[str] = ()) -> CasaResult:
    """Run `code` in a CASA subprocess and wait for it (or kill it at `timeout`)."""
    started = time.perf_counter()
    try:
        proc = start_casa(code, cwd=cwd, args=args)
    except OSError as exc:
        raise CasaUnavailable(f"cannot start the CASA interpreter {casa_python()!r}: {exc}") from exc
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc)
        stdout, stderr = proc.communicate()
    return CasaResult(proc.returncode, stdout, stderr, time.perf_counter() - started, timed_out)


def result_tail(result: CasaResult, lines: int = 8) -> str:
    """The last lines CASA printed (stderr first: that is where it says what went wrong)."""
    text = (result.stderr or "") + "\n" + (result.stdout or "")
    return " | ".join(text.strip().splitlines()[-lines:])


def run_casa_json(
    code: str, marker: str, *, cwd: Path, timeout: float, args: Sequence[str] = ()
) -> tuple[dict, CasaResult]:
    """Run `code` in CASA and return the JSON it printed on the line `<marker> {...}`."""
    result = run_casa(code, cwd=cwd, timeout=timeout, args=args)
    prefix = marker + " "
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith(prefix)), None)
    if not result.ok or line is None:
        reason = "timed out" if result.timed_out else f"exit code {result.returncode}"
        raise CasaScriptFailed(f"{marker} failed ({reason}): {result_tail(result)}")
    return json.loads(line.removeprefix(prefix)), result


CHECK_CODE = """
import json, time
t0 = time.perf_counter()
import casatools, casatasks
from casatools import ctsys
print("CASA_CHECK " + json.dumps({
    "casatools": casatools.version_string(),
    "casatasks": casatasks.version_string(),
    "data_path": ctsys.rundata(),
    "import_seconds": round(time.perf_counter() - t0, 3),
}))
"""


def check(timeout: float = 120.0) -> dict:
    """Start CASA once, report versions and data path, and cache the answer for the health page."""
    cwd = Path(settings.VAR_DIR) / "casa-check"
    try:
        info, result = run_casa_json(CHECK_CODE, "CASA_CHECK", cwd=cwd, timeout=timeout)
    except CasaScriptFailed as exc:
        raise CasaUnavailable(
            f"CASA did not start with {casa_python()}: {exc} "
            "-- install it with `make run` / `pip install -r requirements.txt`."
        ) from exc
    info["total_seconds"] = round(result.seconds, 3)
    info["checked_at"] = time.time()
    cache = Path(settings.CASA_CHECK_CACHE)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(info, indent=1))
    return info


def cached_check() -> dict | None:
    """The last `check()` answer, or None when CASA has not been checked on this machine."""
    try:
        return json.loads(Path(settings.CASA_CHECK_CACHE).read_text())
    except (OSError, ValueError):
        return None
