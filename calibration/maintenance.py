"""Runs the portal writes itself: restoring a flag version, cleaning up for a run from scratch."""

import json
import shutil
from pathlib import Path

from calibration import workerfiles
from calibration.models import Run


def script_for(run: Run) -> tuple[bytes, str]:
    """An ALMA-style one-step script for a maintenance run, and its file name."""
    if run.purpose != Run.Purpose.RESTORE_FLAGS:
        raise ValueError(f"run {run.pk} has no script and no maintenance purpose")
    ms, version = run.parameters["ms"], run.parameters["version"]
    title = f"Restore flag version {version} of {ms}"
    text = (
        f"thesteps = []\nstep_title = {{0: {json.dumps(title)}}}\n"
        "try:\n  thesteps = mysteps\nexcept NameError:\n  pass\n\n"
        f"# {title}\nmystep = 0\nif(mystep in thesteps):\n"
        f"  flagmanager(vis={json.dumps(ms)}, mode='restore', versionname={json.dumps(version)})\n"
    )
    return text.encode("utf-8"), f"qa2portal_restore_flags_run{run.pk}.py"


def remove_imported_data(run: Run) -> list[str]:
    """What the seeds do before a clean re-run: rm -rf the imported MS and its flag versions."""
    eb = run.execution_block
    if eb is None:  # run_from_scratch refuses scripts without an EB
        raise ValueError(f"run {run.pk} has no execution block: no imported data to remove")
    folder = Path(run.folder)
    removed = []
    for name in (eb.ms_name, f"{eb.ms_name}.flagversions"):
        path = folder / name
        if path.exists():
            shutil.rmtree(path)
            removed.append(name)
    with workerfiles.open_text(folder, run.output_log_name) as output:  # never through a planted link
        output.write(f"=== from scratch: removed {', '.join(removed) or 'nothing (not imported yet)'}\n")
    return removed
