"""Flag versions of an EB: the saved ones listed from its folder, and queueing a restore run."""

import logging

from django.db import transaction

from assignments.datafiles import UnsafePath, eb_folder, listdir_confined, read_confined
from assignments.models import ExecutionBlock, Mous
from calibration.models import Run, RunStep
from calibration.runs import RunRefused, check_folder_free, enqueue

log = logging.getLogger(__name__)

FLAG_VERSION_LIST_MAX_BYTES = 1024 * 1024  # a real list is a few hundred bytes


def flag_versions(eb: ExecutionBlock) -> dict[str, list[dict[str, str]]]:
    """The saved flag versions of every MS in the EB folder: {ms name: [{name, comment}]}.

    Read without following links (the folder is written by uploaded scripts): a .flagversions
    that is a link, or whose FLAG_VERSION_LIST is one, is left out and logged."""
    try:
        folder = eb_folder(eb)
        entries = listdir_confined(base=folder)
    except (OSError, UnsafePath):
        return {}
    found: dict[str, list[dict[str, str]]] = {}
    for entry in entries:
        if entry.kind != "folder" or not entry.name.endswith(".flagversions"):
            continue
        try:
            text = read_confined(
                f"{entry.name}/FLAG_VERSION_LIST", base=folder, limit=FLAG_VERSION_LIST_MAX_BYTES
            ).decode("utf-8", errors="replace")
        except FileNotFoundError:
            continue
        except (OSError, UnsafePath) as exc:
            log.warning("flag versions of %s not read: %s", eb.folder_name, exc)
            continue
        versions = []
        for line in text.splitlines():
            name, _, comment = line.partition(":")
            if name.strip():
                versions.append({"name": name.strip(), "comment": comment.strip()})
        found[entry.name.removesuffix(".flagversions")] = versions
    return found


@transaction.atomic
def flagversion_restore(*, eb: ExecutionBlock, ms: str, version_name: str, by) -> Run:
    """Queue a run that restores flag version `version_name` of `ms` (flagmanager restore)."""
    available = flag_versions(eb)
    if ms not in available:
        raise RunRefused(f"{ms} has no saved flag versions in {eb.folder_name}")
    if version_name not in {v["name"] for v in available[ms]}:
        raise RunRefused(f"{ms} has no flag version {version_name!r}")
    mous = Mous.objects.select_for_update().get(pk=eb.mous_id)
    folder = eb_folder(eb)
    check_folder_free(mous, folder)
    run = Run.objects.create(
        mous=mous,
        execution_block=eb,
        purpose=Run.Purpose.RESTORE_FLAGS,
        parameters={"ms": ms, "version": version_name},
        folder=str(folder),
        created_by=by,
    )
    RunStep.objects.create(run=run, number=0, title=f"Restore flag version {version_name} of {ms}")
    enqueue(run)
    return run
