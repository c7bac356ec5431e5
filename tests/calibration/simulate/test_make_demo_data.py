"""make_demo_data: the demo project, two MOUS, three EBs with their MS in the staged folders."""

import time

import pytest
from django.core.management import call_command

from assignments.datafiles import eb_folder, mous_folder
from assignments.models import ExecutionBlock, Mous, Project

pytestmark = [pytest.mark.casa, pytest.mark.django_db]


def test_make_demo_data_registers_stages_and_is_idempotent(data_root, capsys):
    call_command("make_demo_data")
    project = Project.objects.get(code="2019.1.00001.S")
    assert {i.role for i in project.investigators.all()} == {"pi", "coi"}
    alma = Mous.objects.get(uid="uid://A001/Xsim01/X1")
    ngc = Mous.objects.get(uid="uid://A001/Xsim01/X2")
    assert alma.requested_rms_mjy == 0.5 and alma.band == 6
    assert alma.state == "ASSIGNED" and alma.assignee.user.username == "reducer"  # the demo reducer
    assert ngc.state == "NEW"  # left for the DRM to assign from the whiteboard
    assert [eb.uid for eb in alma.execution_blocks.all()] == ["uid://A002/Xsim01/X1", "uid://A002/Xsim01/X2"]
    assert (mous_folder(alma) / "Combination" / "calibrated").is_dir()
    assert not (mous_folder(ngc) / "Combination").exists()  # one EB: nothing to combine
    for eb in ExecutionBlock.objects.all():
        # The MS is the raw data under raw/: step 0 copies it, so a run from scratch is possible.
        assert eb.data_status == "present" and eb.data_name == f"raw/{eb.ms_name}"
        assert (eb_folder(eb) / "raw" / eb.ms_name / "table.dat").exists()
        assert eb_folder(eb).is_relative_to(data_root)
    ngc_eb = ngc.execution_blocks.get()
    script = ngc_eb.scripts.get().latest_version().text()
    assert f"vis = '{ngc_eb.ms_name}'" in script
    truths = [
        (eb_folder(eb) / "raw" / f"{eb.ms_name}.truth.json").read_text() for eb in alma.execution_blocks.all()
    ]
    assert '"bad_wvr"' in truths[0] and '"dead_antenna"' in truths[1]  # different faults per EB

    started = time.perf_counter()
    call_command("make_demo_data")
    assert time.perf_counter() - started < 5  # second start: nothing rebuilt or copied
    assert Mous.objects.count() == 2 and ExecutionBlock.objects.count() == 3
    assert project.investigators.count() == 2
