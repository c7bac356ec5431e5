"""The only module that starts CASA.

CASA always runs in a subprocess of a worker (never in the web process, never in the
Celery process itself): CASA can segfault, leaks memory and keeps global state. The child
gets a minimal environment without secrets, the project's site config, one OpenMP thread,
its own process group and a wall-clock limit.
"""

import ctypes
import functools
import json
import logging
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

from calibration import limits

KILL_GRACE_SECONDS = 5.0
log = logging.getLogger(__name__)


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
        [
            path,
            "--die-with-parent",
            "--unshare-all",
            "--ro-bind",
            "/usr",
            "/usr",
            *_merged_usr_links(),
            "true",
        ],
        capture_output=True,
        timeout=20,
        check=False,
    )
    return path if probe.returncode == 0 else None


# The system part CASA needs: its shared libraries and the dynamic loader's cache. Nothing
# else of /etc (no shadow, no host configuration), no /home, /root, /var or /srv.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
SYSTEM_ETC = (
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/fonts",  # matplotlib's PNGs (plotbandpass, plotms)
)

# Run by path with -I (no PYTHONPATH, no user site, no script folder on the path): it
# reports the interpreter's own import path, not the one casa_environment gives CASA.
INTERPRETER_PROBE = Path(__file__).resolve().parent / "incasa" / "interpreter_probe.py"


def _merged_usr_links() -> list[str]:
    """Debian's /bin, /lib... are links into /usr: recreate them as links, else bind them."""
    argv: list[str] = []
    for top in SYSTEM_DIRS[1:]:
        link = Path(top)
        if link.is_symlink():
            argv += ["--symlink", os.readlink(link), top]
        elif link.is_dir():
            argv += ["--ro-bind", top, top]
    return argv


@functools.cache
def interpreter_roots() -> tuple[tuple[str, str], ...]:
    """Where CASA's interpreter lives: its prefix, the venv, its import path and casadata, as
    (real folder, path the interpreter knows it by) pairs.

    Asked of the interpreter itself (it may be another one than ours, CASA_PYTHON), once
    per process; these folders are bound read-only into the sandbox at their own paths, so no
    checkout location (under /tmp, say) can hide them; a path reached through a link (a venv
    that is a link to another one) is bound at both its real and its linked path.
    """
    python = casa_python()
    answer = subprocess.run(
        [python, "-I", str(INTERPRETER_PROBE)], capture_output=True, text=True, timeout=60, check=False
    )
    if answer.returncode != 0:
        raise CasaUnavailable(f"cannot start the CASA interpreter {python!r}: {answer.stderr.strip()}")
    known = [Path(p) for p in json.loads(answer.stdout)] + [Path(os.path.abspath(python)).parent]
    real = [p for p in _outermost([k.resolve() for k in known]) if not str(p).startswith("/usr/")]
    pairs = [(str(p), str(p)) for p in real]
    for path in _outermost([k for k in known if k.exists() and k.resolve() != k]):
        if not any(path.is_relative_to(r) for r in real):
            pairs.append((str(path.resolve()), str(path)))
    return tuple(pairs)


def _outermost(paths: Sequence[Path]) -> list[Path]:
    """The folders of `paths` that are not inside another one of them (bind each tree once)."""
    unique = sorted({p for p in paths if p.exists()}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept


def in_casa_code_roots() -> list[Path]:
    """The project's code that runs inside CASA: the two apps with `incasa/` code (and the
    site config in calibration/). The rest of the checkout (settings, var/, the database)
    stays invisible."""
    base = Path(settings.BASE_DIR)
    return [base / "calibration", base / "reports"]


def sandbox_argv(cwd: Path, writable: Sequence[Path]) -> list[str]:
    """bubblewrap around CASA: only what CASA needs, read-only; the run folder writable; no
    network; dies with us. Every bind is explicit, so nothing depends on where the checkout is.

    Empty when sandboxing is off, or unavailable with CASA_SANDBOX=auto.
    """
    if sandbox_mode() != "bwrap":
        return []
    bwrap = bubblewrap()
    assert bwrap is not None  # sandbox_mode() said so
    uid = str(settings.CASA_SANDBOX_UID)
    # Its own user namespace: an unprivileged uid with no capabilities, even for a root worker;
    # its own network namespace: no TCP to the host and no abstract Unix sockets either.
    argv = [bwrap, "--die-with-parent", "--unshare-all", "--unshare-user", "--new-session"]
    argv += ["--uid", uid, "--gid", uid, "--cap-drop", "ALL"]
    argv += ["--ro-bind", "/usr", "/usr", *_merged_usr_links()]
    for name in SYSTEM_ETC:
        if Path(name).exists():
            argv += ["--ro-bind", name, name]
    # bubblewrap's --tmpfs /tmp is the sandbox's own private, empty /tmp (bandit B108: not a host /tmp).
    argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]  # noqa: S108  # nosec B108
    # Later binds mount over the private /tmp, so a venv or a run folder under /tmp stays visible.
    for source, target in interpreter_roots():
        argv += ["--ro-bind", source, target]
    for root in map(str, in_casa_code_roots()):
        argv += ["--ro-bind", root, root]
    # HOME is a private, empty tmpfs per run: caches work (matplotlib's takes 0.1 s to build)
    # and nothing a step writes there reaches the host or the next run.
    argv += ["--tmpfs", str(settings.CASA_HOME)]
    for path in [cwd, *writable]:
        argv += ["--bind", str(path), str(path)]
    return [*argv, "--chdir", str(cwd), "--"]


@functools.cache
def sandbox_mode() -> str:
    """bwrap or none, decided once per process from CASA_SANDBOX and what the machine can do."""
    mode = settings.CASA_SANDBOX
    if mode == "none":
        return "none"
    if bubblewrap() is None:
        if mode == "bwrap":
            raise CasaUnavailable("CASA_SANDBOX=bwrap but bubblewrap is missing or cannot create namespaces")
        return "none"
    return "bwrap"


def sandbox_decide() -> dict:
    """At worker start: decide the sandbox mode, prove it can start CASA's interpreter, and
    record the answer for the health page (var/sandbox.json)."""
    started = time.perf_counter()
    info: dict = {"requested": settings.CASA_SANDBOX, "decided_at": time.time(), "pid": os.getpid()}
    try:
        info["mode"] = sandbox_mode()
        probe_dir = Path(settings.VAR_DIR) / "sandbox-probe"
        probe_dir.mkdir(parents=True, exist_ok=True)
        proc = start_casa("calibration.incasa.sandbox_probe", cwd=probe_dir, sandbox=True)
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            raise CasaUnavailable(f"the sandbox cannot start CASA's interpreter: {err.strip()[-300:]}")
        info["ok"], info["binds"] = (
            True,
            [t for _, t in interpreter_roots()] + [str(p) for p in in_casa_code_roots()],
        )
    except (CasaUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        info["ok"], info["error"] = False, str(exc)
    info["limits"] = limits.describe()
    info["seconds"] = round(time.perf_counter() - started, 3)
    if info.get("mode") != "bwrap":
        log.warning(
            "CASA runs WITHOUT a sandbox (CASA_SANDBOX=%s, bubblewrap %s): uploaded scripts can read "
            "and write whatever this worker can",
            settings.CASA_SANDBOX,
            "missing or unable to make namespaces" if bubblewrap() is None else "not used",
        )
    elif not info["ok"]:
        log.error("the CASA sandbox does not start: %s", info.get("error"))
    else:
        log.info("CASA sandbox: bubblewrap, limits %s", info["limits"])
    Path(settings.CASA_SANDBOX_STATE).parent.mkdir(parents=True, exist_ok=True)
    Path(settings.CASA_SANDBOX_STATE).write_text(json.dumps(info, indent=1))
    return info


def sandbox_state() -> dict | None:
    """What the last worker to start decided about the sandbox (None: no worker has started)."""
    try:
        return json.loads(Path(settings.CASA_SANDBOX_STATE).read_text())
    except (OSError, ValueError):
        return None


def die_with_parent() -> None:
    # Without bubblewrap: the kernel kills CASA when the worker process that started it dies.
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def start_casa(
    module: str,
    *,
    cwd: Path,
    args: Sequence[str] = (),
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    sandbox: bool = False,
    writable: Sequence[Path] = (),
    stdin=subprocess.DEVNULL,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen:
    """Start `python -P -m module args...` as CASA's interpreter in `cwd`, in a new process group.

    `module` is found through PYTHONPATH (the checkout, casa_environment); `-P` keeps `cwd`
    (the run folder, which a reducer's script can write) off the import path, so nothing in
    it can stand in for our modules or the standard library.

    With `sandbox`, the process runs under bubblewrap where available: only `cwd` (and
    `writable`) can be written, there is no network, and it dies with its parent.
    """
    cwd.mkdir(parents=True, exist_ok=True)
    wrapper = sandbox_argv(cwd, writable) if sandbox else []
    if sandbox:
        wrapper = [*limits.pids_cgroup_argv(), *limits.rlimit_argv(), *wrapper]
    return subprocess.Popen(
        [*wrapper, casa_python(), "-P", "-m", module, *args],
        cwd=cwd,
        env=casa_environment(),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=None if sandbox_mode() == "bwrap" and sandbox else die_with_parent,
        pass_fds=tuple(pass_fds),  # the run's event pipe (calibration.engine)
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


def run_casa(module: str, *, cwd: Path, timeout: float, args: Sequence[str] = ()) -> CasaResult:
    """Run `module` (`python -m`) in a CASA subprocess and wait for it (or kill it at `timeout`)."""
    started = time.perf_counter()
    try:
        proc = start_casa(module, cwd=cwd, args=args)
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
    module: str, marker: str, *, cwd: Path, timeout: float, args: Sequence[str] = ()
) -> tuple[dict, CasaResult]:
    """Run `module` in CASA and return the JSON it printed on the line `<marker> {...}`."""
    result = run_casa(module, cwd=cwd, timeout=timeout, args=args)
    prefix = marker + " "
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith(prefix)), None)
    if not result.ok or line is None:
        reason = "timed out" if result.timed_out else f"exit code {result.returncode}"
        raise CasaScriptFailed(f"{marker} failed ({reason}): {result_tail(result)}")
    return json.loads(line.removeprefix(prefix)), result


def check(timeout: float = 120.0) -> dict:
    """Start CASA once, report versions and data path, and cache the answer for the health page."""
    cwd = Path(settings.VAR_DIR) / "casa-check"
    try:
        info, result = run_casa_json(
            "calibration.incasa.version_check", "CASA_CHECK", cwd=cwd, timeout=timeout
        )
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
