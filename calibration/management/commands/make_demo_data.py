"""Register the demo project with its MOUS and EBs, and put real data in their EB folders.

(a) a two-EB ALMA MOUS built by the simulator (two seeds, different injected faults);
(b) a one-EB MOUS holding the VLA NGC5921 data shipped with CASA.
Idempotent: rows are matched by uid, an EB whose MS is already in its folder is left alone,
and builds come from the simulated-EB cache, so a second `make run` takes about a second.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from assignments.datafiles import eb_folder
from assignments.demo import DEMO_ACCOUNTS, ensure_demo_accounts
from assignments.intake import eb_create, investigator_add, mous_create, project_create
from assignments.models import ExecutionBlock, Investigator, Mous, MousState, Person, Project
from assignments.services import mous_assign
from assignments.staging import mous_stage
from calibration.catalogue import load_file
from calibration.models import Script, ScriptVersion
from calibration.rawdata import RAW_FOLDER
from calibration.scripts import script_get_or_create, script_version_create
from calibration.simulate import presets
from calibration.simulate.build import EbBuild, cached_eb, cached_ngc5921, copy_ms, default_cache_root
from calibration.simulate.ngc5921 import render_script
from calibration.simulate.spec import BadWvr, BandpassDefect, DeadAntenna, HotTsys, LowSnrSpw, Quack


class _DemoProject(TypedDict):
    code: str
    title: str
    cycle: int


PROJECT: _DemoProject = {
    "code": "2019.1.00001.S",
    "title": "Demo: the disc of HD 163296 and HI in NGC 5921",
    "cycle": 7,
}
INVESTIGATORS = (
    ("Ada Lovelace-Demo", "pi@example.org", Investigator.Role.PI),
    ("Carl Sagan-Demo", "coi@example.org", Investigator.Role.COI),
)


@dataclass(frozen=True)
class DemoEb:
    uid: str
    observed_at: dt.datetime
    source: str  # "sim" or "ngc5921"
    seed: int = 0
    faults: tuple = ()


ALMA_MOUS = {
    "uid": "uid://A001/Xsim01/X1",
    "sb_name": "HD_163296_a_06_TM1",
    "science_goal": "Disc continuum and CO(2-1)",
    "array": Mous.Array.TWELVE_M_EXTENDED,
    "band": 6,
    "representative_frequency_ghz": 230.538,
    "requested_rms_mjy": 0.5,
    "rms_bandwidth_mhz": 2000.0,
    "resolution_min_arcsec": 0.9,
    "resolution_max_arcsec": 1.6,
    "goal": Mous.Goal.CONTINUUM,
}
ALMA_EBS = (
    # the casa-lab faults: bad WVR + bandpass notch/jump on DV07, hot receiver on DA44
    DemoEb(
        "uid://A002/Xsim01/X1",
        dt.datetime(2024, 6, 1, 5, 0, tzinfo=dt.UTC),
        "sim",
        seed=101,
        faults=(BadWvr("DV07"), BandpassDefect("DV07", spw=2), HotTsys("DA44")),
    ),
    # a second night with other problems: dead antenna, quack, narrow spw, hot DV03
    DemoEb(
        "uid://A002/Xsim01/X2",
        dt.datetime(2024, 6, 2, 5, 0, tzinfo=dt.UTC),
        "sim",
        seed=202,
        faults=(DeadAntenna("DV10"), Quack(), LowSnrSpw(spw=3), HotTsys("DV03")),
    ),
)
NGC_MOUS = {
    "uid": "uid://A001/Xsim01/X2",
    "sb_name": "NGC5921_a_01_TC",
    "science_goal": "HI 21 cm cube (VLA tutorial data standing in for an ALMA EB)",
    "array": Mous.Array.TWELVE_M_COMPACT,
    "band": 1,
    "representative_frequency_ghz": 1.413,
    "requested_rms_mjy": 3.0,
    "rms_bandwidth_mhz": 0.0244,
    "resolution_min_arcsec": 40.0,
    "resolution_max_arcsec": 70.0,
    "goal": Mous.Goal.LINE,
    "notes": "VLA D-array data (casadata demo/NGC5921.fits): antennas are named 1..28; refant '15'.",
}
NGC_EBS = (DemoEb("uid://A002/Xsim02/X1", dt.datetime(1995, 4, 13, 9, 19, tzinfo=dt.UTC), "ngc5921"),)


class Command(BaseCommand):
    help = "Create the demo project, MOUS and EBs with simulated ALMA data and NGC5921 (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--cache", type=Path, default=None, help="simulated-EB cache (default var/simcache)"
        )

    def handle(self, *args, cache: Path | None = None, **options) -> None:
        started = time.perf_counter()
        cache = cache or default_cache_root()
        with transaction.atomic():
            # The generated scripts' setjy needs the simulated calibrators' fluxes (the file's).
            self.stdout.write(f"calibrator fluxes: {load_file()}")
            project = self._project()
            groups = [
                (self._mous(project, ALMA_MOUS, ALMA_EBS), ALMA_EBS),
                (self._mous(project, NGC_MOUS, NGC_EBS), NGC_EBS),
            ]
        for mous, demo_ebs in groups:
            mous_stage(mous)
            for demo in demo_ebs:
                self._stage_data(mous.execution_blocks.get(uid=demo.uid), demo, cache)
        self._assign_demo_reducer(groups[0][0])
        self.stdout.write(f"demo data ready in {time.perf_counter() - started:.1f} s")

    # --- rows ---------------------------------------------------------------------------------
    def _project(self) -> Project:
        """Registered through the intake service, as a DRM would; an existing one is completed."""
        project = Project.objects.filter(code=PROJECT["code"]).first()
        if project is None:
            pi = next(person for person in INVESTIGATORS if person[2] == Investigator.Role.PI)
            return project_create(
                code=PROJECT["code"],
                title=PROJECT["title"],
                pi_name=pi[0],
                pi_email=pi[1],
                cois=[(name, email) for name, email, role in INVESTIGATORS if role == Investigator.Role.COI],
                by=None,
            )
        known = {email.lower() for email in project.investigators.values_list("email", flat=True)}
        for name, email, role in INVESTIGATORS:
            if email.lower() not in known:
                investigator_add(project=project, name=name, email=email, role=role, by=None)
        return project

    def _mous(self, project: Project, fields: dict, demo_ebs: tuple[DemoEb, ...]) -> Mous:
        """Registered through the intake services; existing rows (matched by uid) are kept."""
        mous = Mous.objects.filter(uid=fields["uid"]).first()
        if mous is None:
            due = timezone.localdate() + dt.timedelta(days=21)
            mous = mous_create(project=project, by=None, due_date=due, **fields)
            self.stdout.write(f"MOUS {mous.uid} registered")
        known = set(
            ExecutionBlock.objects.filter(uid__in=[d.uid for d in demo_ebs]).values_list("uid", flat=True)
        )
        for demo in demo_ebs:
            if demo.uid not in known:
                eb_create(mous=mous, uid=demo.uid, observed_at=demo.observed_at, by=None)
        return mous

    # --- data ---------------------------------------------------------------------------------
    def _stage_data(self, eb: ExecutionBlock, demo: DemoEb, cache: Path) -> None:
        """The MS goes to raw/ as the EB's raw data (no ASDM survives a round trip, see
        ASDM_ROUNDTRIP.md); step 0 of the scripts copies it to the working MS, so a re-run
        from scratch can remove the working MS without losing the data."""
        raw = eb_folder(eb) / RAW_FOLDER
        target = raw / eb.ms_name
        if not (target / "table.dat").exists():
            build = self._build(eb, demo, cache)
            self.stdout.write(f"{eb.uid}: {build.ms.name} ({build.size_mb:.0f} MB) -> {target}")
            copy_ms(build.ms, raw, name=eb.ms_name)
            for extra in ("truth.json", "truth.npz"):
                if (build.folder / extra).exists():
                    shutil.copy2(build.folder / extra, raw / f"{eb.ms_name}.{extra}")
        data_name = f"{RAW_FOLDER}/{eb.ms_name}"
        if eb.data_status != ExecutionBlock.DataStatus.PRESENT or eb.data_name != data_name:
            eb.data_status, eb.data_name = ExecutionBlock.DataStatus.PRESENT, data_name
            eb.save(update_fields=["data_status", "data_name"])
        if demo.source == "ngc5921" and not Script.objects.filter(execution_block=eb).exists():
            script = script_get_or_create(kind=Script.Kind.CALIBRATION, mous=eb.mous, eb=eb)
            script_version_create(
                script=script,
                text=render_script(eb.ms_name, data_name),
                source=ScriptVersion.Source.UPLOADED,
                by=None,
                note="the VLA NGC5921 tutorial in ALMA step layout (refant '15')",
            )

    def _assign_demo_reducer(self, mous: Mous) -> None:
        """The ALMA MOUS starts assigned to the demo reducer, so they can work on it at once."""
        ensure_demo_accounts()
        reducer = Person.objects.get(user__username=DEMO_ACCOUNTS[1].username)
        if mous.assignee_id is None and mous.state == MousState.NEW:
            mous_assign(mous=mous, reducer=reducer, by=None, note="demo: assigned by make_demo_data")

    def _build(self, eb: ExecutionBlock, demo: DemoEb, cache: Path) -> EbBuild:
        if demo.source == "ngc5921":
            return cached_ngc5921(cache)
        spec = presets.small().with_faults(*demo.faults, seed=demo.seed, ms_name=eb.ms_name)
        self.stdout.write(f"{eb.uid}: building the simulated EB (seed {demo.seed}) ...")
        return cached_eb(spec, cache)
