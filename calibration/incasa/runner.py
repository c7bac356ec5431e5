"""Run the chosen steps of an ALMA-style script inside one CASA interpreter.

Started by calibration.casa as `python -P -m calibration.incasa.runner` (cwd = the run
folder). The worker sends its request on stdin (main_from_stdin): the script's text, the
spec, the fd of the event pipe and the run's nonce; stdin is then closed, so the script
reads none of it again, and nothing of it is a file in the folder the script could change.
The spec:
    {"script": "<file name>", "steps": [[0, "Import of the ASDM"], ...], "casa_log": "<file>",
     "exclude": ["<files the worker writes>"], "diagnostics_dir": "<folder>"}
A runner started by hand takes the path of a spec file instead (`... runner --spec FILE`,
main_from_spec_file; events on stdout).
`-P` keeps the run folder off the import path while the runner imports its own code; the
folder is added (last) just before the script runs, so the script can import helper
modules that sit beside it, as at the CASA prompt.
The script is compiled once and executed once per step with `mysteps = [N]` in one
namespace, so variables survive between steps as at the CASA prompt. Each step reports
start / end (with error and traceback) / products as events (calibration.incasa.events).
"""

import ast
import functools
import importlib
import json
import linecache
import os
import re
import sys
import time
import traceback
from pathlib import Path

from casatasks import casalog

from calibration.incasa import compat, events, products
from calibration.incasa.events import emit

# Tasks whose output must exist afterwards: CASA often logs SEVERE and returns instead of raising.
OUTPUT_PARAMETERS = {
    "gaincal": "caltable",
    "bandpass": "caltable",
    "gencal": "caltable",
    "polcal": "caltable",
    "wvrgcal": "caltable",
    "fluxscale": "fluxtable",
    "split": "outputvis",
    "mstransform": "outputvis",
    "concat": "concatvis",
    "importuvfits": "vis",
    "exportfits": "fitsimage",
    "impbcor": "outfile",
    "listobs": "listfile",
}
# The leap-second table of casadata is always "out of date" on this clock: not a task failure.
SEVERE_NOISE = re.compile(r"Leap second table|TAI_UTC|MeasTable::dUTC|Until the table is updated")


class StepState:
    def __init__(self) -> None:
        self.tasks: list[str] = []
        self.missing: list[str] = []
        # (task, keyword arguments, return value) of every CASA task call, for diagnostics.
        self.calls: list[tuple[str, dict, object]] = []


def wrap_task(name: str, task, state: StepState):
    parameter = OUTPUT_PARAMETERS.get(name)

    @functools.wraps(task)
    def call(*args, **kwargs):
        state.tasks.append(name)
        result = task(*args, **kwargs)
        state.calls.append((name, kwargs, result))
        expected = kwargs.get(parameter) if parameter else None
        if name == "tclean" and kwargs.get("imagename") and kwargs.get("niter", 0) >= 0:
            expected = f"{kwargs['imagename']}.psf"
        if expected and isinstance(expected, str) and not Path(expected).exists():
            state.missing.append(f"{name} did not write {expected!r}")
        if name == "wvrgcal" and isinstance(result, dict) and result.get("success") is False:
            state.missing.append("wvrgcal reported success=False")
        return result

    return call


class VersionChecks(ast.NodeTransformer):
    """Turn `sys.exit('... VERSION ...')` into a warning: CASA 6.7 is what we have."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "exit"
            and isinstance(func.value, ast.Name)
            and func.value.id == "sys"
            and "VERSION" in ast.unparse(node).upper()
        ):
            return ast.copy_location(
                ast.Call(func=ast.Name("__qa2_version_check__", ast.Load()), args=node.args, keywords=[]),
                node,
            )
        return node


def version_check(message: object = "") -> None:
    text = f"qa2portal: version check answered with CASA {compat.casatools.version_string()}: {message}"
    print(text, flush=True)
    casalog.post(text, "WARN")


def diagnose(hook: str, folder: Path, out_dir: str, made: list[dict], calls: list) -> list[dict]:
    """Diagnostics of what the step made, by the extractor the worker names ("module:function",
    settings.CASA_AFTER_STEP_HOOK); never fails the step (the extractor says what it could not read)."""
    try:
        module, _, function = hook.partition(":")
        after_step = getattr(importlib.import_module(module), function)
        return after_step(folder, out_dir, made, calls)
    except Exception as exc:
        return [
            {
                "topic": "gains",
                "name": "diagnostics",
                "artifact": "",
                "product": "",
                "summary": {"cannot_assess": f"diagnostics failed: {type(exc).__name__}: {exc}"},
            }
        ]


def severe_lines(log: Path, offset: int) -> tuple[list[str], int]:
    try:
        with log.open("r", errors="replace") as handle:
            handle.seek(offset)
            text = handle.read()
            offset = handle.tell()
    except OSError:
        return [], offset
    lines = [ln.strip() for ln in text.splitlines() if "SEVERE" in ln and not SEVERE_NOISE.search(ln)]
    return lines[:20], offset


def main(argv: list[str] | None = None) -> int:
    """No argument: the worker's request on stdin; `--spec FILE`: a spec file, by hand."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        return main_from_stdin()
    if len(args) == 2 and args[0] == "--spec":
        return main_from_spec_file(args[1])
    print("usage: python -m calibration.incasa.runner [--spec SPEC.json]", file=sys.stderr)
    return 2


def main_from_spec_file(spec_path: str) -> int:
    """By hand: the spec is a file (excluded from the products), the script a file beside it."""
    spec = json.loads(Path(spec_path).read_text())
    spec["exclude"] = [*spec.get("exclude", []), Path(spec_path).name]
    return run(spec, (Path.cwd() / spec["script"]).read_text())


def main_from_stdin() -> int:
    """From the worker: read the request, close stdin, open the event channel, run."""
    request = json.loads(sys.stdin.read())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    events.open_channel(int(request.pop("event_fd")), str(request.pop("nonce")))
    return run(request["spec"], request["script"])


def run(spec: dict, script_text: str) -> int:
    folder = Path.cwd()
    casa_log = folder / spec["casa_log"]
    casalog.setlogfile(str(casa_log))
    skipped = compat.SkippedHelpers()
    state = StepState()
    ns = compat.namespace(skipped)
    for name in compat.casatasks_names():
        ns[name] = wrap_task(name, ns[name], state)
    ns["__qa2_version_check__"] = version_check
    # The text the worker sent is what runs (the copy in the folder is for the reducer);
    # linecache lets tracebacks quote its lines.
    lines = script_text.splitlines(keepends=True)
    linecache.cache[spec["script"]] = (len(script_text), None, lines, spec["script"])
    tree = VersionChecks().visit(ast.parse(script_text, filename=spec["script"]))
    code = compile(ast.fix_missing_locations(tree), spec["script"], "exec")
    exclude = set(spec.get("exclude", [])) | {spec["casa_log"]}
    before = products.snapshot(folder, exclude)
    log_offset = casa_log.stat().st_size if casa_log.exists() else 0
    emit("runner_start", casa=compat.casatools.version_string())
    # The runner's own imports are done: from here on the script may import modules of its
    # folder (appended, so they never stand in for ours or the standard library's).
    sys.path.append(str(folder))

    for number, title in spec["steps"]:
        skipped.calls.clear()
        state.tasks.clear()
        state.missing.clear()
        state.calls.clear()
        emit("step_start", step=number, title=title)
        casalog.post(f"qa2portal: step {number} {title}", "INFO")
        started = time.time()
        error, trace = "", ""
        ns["mysteps"] = [number]
        try:
            # Running the reducer's script is the runner's job: only here, in the sandboxed CASA process.
            exec(code, ns)  # noqa: S102  # nosec B102
        except SystemExit as exc:
            error = f"the script called sys.exit({exc.code!r})"
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            trace = traceback.format_exc()
        severe, log_offset = severe_lines(casa_log, log_offset)
        if not error and state.missing:
            error = "expected output missing: " + "; ".join(state.missing)
        after = products.snapshot(folder, exclude)
        made = [products.classify(folder, rel) for rel in products.changed(before, after)]
        before = after
        emit("products", step=number, items=made)
        if not error and spec.get("diagnostics_dir") and spec.get("after_step"):
            items = diagnose(spec["after_step"], folder, spec["diagnostics_dir"], made, state.calls)
            emit("diagnostics", step=number, items=items)
        emit(
            "step_end",
            step=number,
            ok=not error,
            error=error,
            traceback=trace,
            seconds=round(time.time() - started, 3),
            skipped_helpers=list(skipped.calls),
            casa_tasks=list(dict.fromkeys(state.tasks)),
            severe=severe,
        )
        if error:
            break
    emit("runner_end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
