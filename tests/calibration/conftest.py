"""Calibration fixtures: an assigned MOUS whose EB has real data in its staged folder."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from assignments.datafiles import eb_folder
from assignments.models import ExecutionBlock, MousState, Person
from assignments.staging import mous_stage
from calibration import scripts
from calibration.models import Script, ScriptVersion
from tests.factories import ExecutionBlockFactory, MousFactory, PersonFactory

RAW = "raw"


@pytest.fixture
def reducer(db) -> Person:
    return PersonFactory(user__username="calreducer", user__password="reducer-pw-123", initials="CR")


@pytest.fixture
def drm_person(db) -> Person:
    return PersonFactory(
        user__username="caldrm", user__password="drm-pw-12345", role=Person.Role.DRM, initials="CD"
    )


@pytest.fixture
def make_eb(db, reducer) -> Callable[..., ExecutionBlock]:
    """An ASSIGNED MOUS with one EB; `source` (an MS) is copied in as the EB's raw data."""

    def make(source: Path | None = None, *, uid: str | None = None) -> ExecutionBlock:
        mous = MousFactory(state=MousState.ASSIGNED, assignee=reducer)
        eb = ExecutionBlockFactory(mous=mous, **({"uid": uid} if uid else {}))
        mous_stage(mous)
        if source is not None:
            target = eb_folder(eb) / RAW / source.name
            shutil.copytree(source, target)
            eb.data_name = f"{RAW}/{source.name}"
            eb.data_status = ExecutionBlock.DataStatus.PRESENT
            eb.save(update_fields=["data_name", "data_status"])
        return eb

    return make


def script_version(eb: ExecutionBlock, text: str, by=None) -> ScriptVersion:
    script = scripts.script_get_or_create(kind=Script.Kind.CALIBRATION, mous=eb.mous, eb=eb)
    return scripts.script_version_create(
        script=script, text=text, source=ScriptVersion.Source.UPLOADED, by=by
    )


def alma_steps(*bodies: str) -> str:
    """A small ALMA-layout script whose step N runs bodies[N] (indented by the helper)."""
    titles = ", ".join(f"{i}: 'step {i}'" for i in range(len(bodies)))
    out = [
        f"thesteps = []\nstep_title = {{{titles}}}",
        "try:\n  thesteps = mysteps\nexcept NameError:\n  pass",
    ]
    for i, body in enumerate(bodies):
        block = "\n".join("  " + line for line in body.strip().splitlines())
        out.append(f"# step {i}\nmystep = {i}\nif(mystep in thesteps):\n{block}\n")
    return "\n\n".join(out) + "\n"
