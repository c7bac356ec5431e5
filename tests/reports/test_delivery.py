"""Delivery (reports.delivery) in-process, on a real MOUS tree: files on disk below DATA_ROOT,
runs, script versions, qa2 reports, images and the README in the database, every checklist
item green. The task body runs here without a worker; tests/reports/test_delivery_kill.py kills
a real one mid-copy."""

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

import pytest

from assignments.datafiles import eb_folder, mous_folder
from assignments.models import ExecutionBlock, Mous, MousState, Person, StateChange
from assignments.staging import mous_stage
from calibration import runs
from calibration.models import Run, Script, ScriptVersion
from calibration.scripts import script_get_or_create, script_version_create
from qa2portal.errors import Conflict
from reports import checklist, delivery
from reports.delivery import DeliveryRefused, delivery_execute, delivery_request
from reports.models import Delivery, ImageQA, Qa2Report
from reports.readme import readme_save
from tests.calibration.conftest import alma_steps
from tests.factories import ExecutionBlockFactory, MousFactory, PersonFactory, ProjectFactory

pytestmark = pytest.mark.django_db

KIB = 1024


# --- a MOUS ready for delivery -------------------------------------------------------------
def _hex() -> str:
    return uuid.uuid4().hex[:6]


def _script(mous: Mous, kind: str, eb: ExecutionBlock | None, body: str) -> ScriptVersion:
    script = script_get_or_create(kind=kind, mous=mous, eb=eb)
    return script_version_create(
        script=script, text=alma_steps(body), source=ScriptVersion.Source.UPLOADED, by=None
    )


def _run(mous: Mous, version: ScriptVersion, folder: Path, log_bytes: int, eb=None) -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    run = Run.objects.create(
        script_version=version,
        mous=mous,
        execution_block=eb,
        folder=str(folder),
        status=Run.Status.SUCCEEDED,
    )
    header = f"casa log of run {run.pk}: {version.script.filename}\n".encode()
    (folder / run.casa_log_name).write_bytes(header + os.urandom(max(0, log_bytes - len(header))))
    (folder / version.script.filename).write_bytes(version.read_bytes())  # the engine's copy
    return run


def ready_mous(
    *,
    ebs: int = 2,
    image_bytes: int = 96 * KIB,
    log_bytes: int = 12 * KIB,
    pngs: int = 3,
    state: str = MousState.QA2_PASS,
    by=None,
) -> Mous:
    """A MOUS whose final checklist is complete, in `state` (QA2 pass by default)."""
    mous = MousFactory(
        project=ProjectFactory(code=f"2019.1.{uuid.uuid4().int % 100000:05d}.S"),
        uid=f"uid://A001/X{_hex()}/X{_hex()}",
        state=state,
    )
    blocks = [ExecutionBlockFactory(mous=mous, uid=f"uid://A002/X{_hex()}/X{_hex()}") for _ in range(ebs)]
    mous_stage(mous)
    for eb in blocks:
        version = _script(mous, Script.Kind.CALIBRATION, eb, "print('calibrate')")
        run = _run(mous, version, eb_folder(eb), log_bytes, eb=eb)
        qa2 = eb_folder(eb) / checklist.QA2_FOLDER
        qa2.mkdir()
        names = [checklist.QA2_TEXTFILE]
        (qa2 / checklist.QA2_TEXTFILE).write_text(f"OBSERVATION of {eb.uid}\nCALIBRATION\nFINDINGS\n")
        for i in range(pngs):
            name = f"{eb.ms_name}.plot{i}.png"
            (qa2 / name).write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(5 * KIB))
            names.append(name)
        Qa2Report.objects.create(execution_block=eb, run=run, status=Qa2Report.Status.DONE, files=names)
    if ebs > 1:
        version = _script(mous, Script.Kind.COMBINATION, None, "print('combine')")
        _run(mous, version, runs.combination_folder(mous), log_bytes)
    imaging = mous_folder(mous) / runs.IMAGING_FOLDER
    _run(mous, _script(mous, Script.Kind.IMAGING_PREP, None, "print('prep')"), imaging, log_bytes)
    run = _run(mous, _script(mous, Script.Kind.IMAGING, None, "print('image')"), imaging, log_bytes)
    for name, kind in (("target_cont", ImageQA.Kind.CONTINUUM), ("target_cube", ImageQA.Kind.CUBE)):
        qa = ImageQA.objects.create(run=run, mous=mous, name=name, kind=kind, summary={})
        for fits in (qa.pbcor_fits, qa.flux_fits):
            (imaging / fits).write_bytes(b"SIMPLE  =                    T" + os.urandom(image_bytes))
    readme_save(mous=mous, text=f"README of {mous.uid}\nThe data were calibrated by hand.\n", by=by)
    mous.refresh_from_db()
    return mous


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    """Every file below `root` -> sha256 (links would be listed as such and fail comparisons)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[path.relative_to(root).as_posix()] = "LINK"
        elif path.is_file():
            found[path.relative_to(root).as_posix()] = sha256(path)
    return found


@pytest.fixture(autouse=True)
def delivery_roots(settings, tmp_path) -> tuple[Path, Path]:
    settings.DELIVERIES_ROOT = tmp_path / "deliveries"
    settings.QA2FAILS_ROOT = tmp_path / "qa2fails"
    settings.DELIVERY_MAX_BYTES_PER_SECOND = 0
    return settings.DELIVERIES_ROOT, settings.QA2FAILS_ROOT


@pytest.fixture
def analyst(db) -> Person:
    return PersonFactory(user__username=f"da{_hex()}", role=Person.Role.DATA_ANALYST, initials="DA")


def package_of(mous: Mous) -> Path:
    return delivery.package_path(mous)


def database_lost(*args) -> None:
    """In place of delivery._done: the worker is lost right after the files are in place."""
    raise OSError(5, "the database went away")


def deliver(mous: Mous, by, kind: str = Delivery.Kind.PACKAGE) -> Delivery:
    return delivery_execute(delivery_request(mous=mous, kind=kind, by=by).pk)


# --- the package ----------------------------------------------------------------------------
def test_the_package_has_the_packagers_tree_and_a_manifest_that_verifies(analyst, settings):
    mous = ready_mous(ebs=2)
    ebs = list(mous.execution_blocks.order_by("uid"))
    done = deliver(mous, analyst.user)

    assert done.status == Delivery.Status.DONE, done.error
    package = (
        Path(settings.DELIVERIES_ROOT)
        / mous.project.code
        / f"member.{mous.uid.replace(':', '_').replace('/', '_')}"
    )
    assert package.name.startswith("member.uid___A001_X")
    assert done.target == str(package) and package.is_dir()
    manifest_name = f"{package.name}.manifest.json"
    expected = {
        "README",
        "script/scriptForFluxCalibration.py",
        "script/scriptForImagingPrep.py",
        "script/scriptForImaging.py",
        "log/scriptForFluxCalibration.py.log",
        "log/scriptForImagingPrep.py.log",
        "log/scriptForImaging.py.log",
        "product/target_cont.pbcor.fits",
        "product/target_cont.flux.fits",
        "product/target_cube.pbcor.fits",
        "product/target_cube.flux.fits",
    }
    for eb in ebs:
        expected |= {
            f"script/{eb.ms_name}.scriptForCalibration.py",
            f"log/{eb.ms_name}.scriptForCalibration.py.log",
        }
        expected |= {
            f"qa/{eb.ms_name}.qa2/{name}" for name in Qa2Report.objects.get(execution_block=eb).files
        }
    files = tree(package)
    assert set(files) == expected | {manifest_name}
    assert {p.name for p in package.iterdir()} == {"README", manifest_name, "script", "log", "qa", "product"}

    manifest = json.loads((package / manifest_name).read_text())
    assert manifest == done.manifest
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == expected
    for path, entry in listed.items():
        assert entry["sha256"] == files[path], path  # re-hashed from the delivered file
        assert entry["size"] == (package / path).stat().st_size
    assert manifest["total_bytes"] == sum(f["size"] for f in manifest["files"]) == done.bytes_total
    assert done.bytes_done == done.bytes_total
    assert manifest["mous"] == mous.uid and manifest["project"] == mous.project.code
    assert manifest["requested_by"] == analyst.user.username and manifest["delivery"] == done.pk
    # Nothing made up: the science goal and group uids are unknown, and the manifest says so.
    assert manifest["science_goal_uid"] is None and manifest["group_ous_uid"] is None
    assert "science goal" in manifest["layout_note"]
    roles = sorted(r["role"] for r in manifest["runs"])
    assert roles == ["calibration", "calibration", "combination", "imaging", "imaging_prep"]
    assert {r["run"] for r in manifest["runs"]} == set(
        Run.objects.filter(mous=mous).values_list("pk", flat=True)
    )
    # The scripts are the versions the runs ran; the logs are the runs' CASA logs.
    for eb in ebs:
        run = Run.objects.get(execution_block=eb)
        assert (
            package / f"script/{eb.ms_name}.scriptForCalibration.py"
        ).read_bytes() == run.script_version.read_bytes()
        assert sha256(package / f"log/{eb.ms_name}.scriptForCalibration.py.log") == sha256(
            eb_folder(eb) / run.casa_log_name
        )
        assert listed[f"log/{eb.ms_name}.scriptForCalibration.py.log"]["source"].endswith(run.casa_log_name)
    assert (package / "README").read_text().startswith(f"README of {mous.uid}")

    mous.refresh_from_db()
    assert mous.state == MousState.DELIVERED
    moves = list(StateChange.objects.filter(mous=mous).order_by("pk").values_list("new_state", "changed_by"))
    assert moves[-2:] == [(MousState.DELIVERING, analyst.user.pk), (MousState.DELIVERED, analyst.user.pk)]
    assert not (Path(settings.DELIVERIES_ROOT) / ".staging" / mous.folder_name).exists()
    assert done.attempts == 1 and done.finished_at is not None


def test_the_package_holds_every_file_the_checklist_names(analyst):
    mous = ready_mous(ebs=2)
    items = checklist.checklist(mous)
    assert items and all(item.ok for item in items), [str(i) for i in items if not i.ok]
    done = deliver(mous, analyst.user)
    assert done.status == Delivery.Status.DONE, done.error
    package = package_of(mous)

    def same(delivered: str, source: Path) -> None:
        assert (package / delivered).read_bytes() == source.read_bytes(), delivered

    covered = 0
    for item in items:
        if item.scope.startswith("EB "):
            eb = mous.execution_blocks.get(uid=item.scope.removeprefix("EB "))
            run = Run.objects.get(execution_block=eb)
            if item.name == "qa2 directory":
                for name in Qa2Report.objects.get(execution_block=eb).files:
                    same(f"qa/{eb.ms_name}.qa2/{name}", eb_folder(eb) / "qa2" / name)
                assert (package / f"qa/{eb.ms_name}.qa2/{checklist.QA2_TEXTFILE}").is_file()
            else:
                script = f"{eb.ms_name}.scriptForCalibration.py"
                assert script in item.name
                same(f"script/{script}", run.folder_path / script)
                same(f"log/{script}.log", run.folder_path / run.casa_log_name)
        elif item.name == "README":
            same("README", mous_folder(mous) / "README")
        elif item.name.startswith(".pbcor.fits"):
            for qa in ImageQA.objects.filter(mous=mous):
                for name in (qa.pbcor_fits, qa.flux_fits):
                    same(f"product/{name}", mous_folder(mous) / "Imaging" / name)
        else:
            script = item.name.split(" ")[0]
            kind = {
                "scriptForFluxCalibration.py": Script.Kind.COMBINATION,
                "scriptForImagingPrep.py": Script.Kind.IMAGING_PREP,
                "scriptForImaging.py": Script.Kind.IMAGING,
            }[script]
            run = Run.objects.get(mous=mous, script_version__script__kind=kind)
            same(f"script/{script}", run.folder_path / script)
            same(f"log/{script}.log", run.folder_path / run.casa_log_name)
        covered += 1
    assert covered == len(items) == 2 * 2 + 5


# --- refusals ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "kind"),
    [
        (MousState.REVIEWING, Delivery.Kind.PACKAGE),
        (MousState.QA2_FAIL, Delivery.Kind.PACKAGE),
        (MousState.DELIVERED, Delivery.Kind.PACKAGE),
        (MousState.QA2_PASS, Delivery.Kind.QA2_FAIL),
        (MousState.FAILED_ARCHIVED, Delivery.Kind.QA2_FAIL),
    ],
)
def test_a_delivery_in_the_wrong_state_is_refused_409_and_nothing_changes(analyst, state, kind, settings):
    mous = ready_mous(ebs=1, state=state)
    version = mous.version
    with pytest.raises(DeliveryRefused) as refused:
        delivery_request(mous=mous, kind=kind, by=analyst.user)
    assert isinstance(refused.value, Conflict) and refused.value.status == 409
    assert mous.get_state_display() in str(refused.value)
    mous.refresh_from_db()
    assert (mous.state, mous.version) == (state, version)
    assert not Delivery.objects.filter(mous=mous).exists()
    assert not Path(settings.DELIVERIES_ROOT).exists() or not any(Path(settings.DELIVERIES_ROOT).rglob("*"))


def test_a_second_delivery_while_one_is_active_is_refused(analyst):
    mous = ready_mous(ebs=1)
    first = delivery_request(mous=mous, kind=Delivery.Kind.PACKAGE, by=analyst.user)
    mous.refresh_from_db()
    assert mous.state == MousState.DELIVERING
    changes = StateChange.objects.filter(mous=mous).count()
    with pytest.raises(DeliveryRefused, match=f"{first.pk} of {mous.uid} is queued"):
        delivery_request(mous=mous, kind=Delivery.Kind.PACKAGE, by=analyst.user)
    assert Delivery.objects.filter(mous=mous).count() == 1
    assert StateChange.objects.filter(mous=mous).count() == changes


def test_an_incomplete_package_is_refused_with_what_is_missing_and_the_mous_stays(analyst):
    mous = ready_mous(ebs=1)
    (mous_folder(mous) / "README").unlink()
    (mous_folder(mous) / "Imaging" / "target_cube.flux.fits").unlink()
    with pytest.raises(DeliveryRefused) as refused:
        delivery_request(mous=mous, kind=Delivery.Kind.PACKAGE, by=analyst.user)
    text = str(refused.value)
    assert "2 item(s) missing" in text and "README" in text and "target_cube.flux.fits" in text
    assert str(mous_folder(mous)) not in text  # paths relative to DATA_ROOT
    mous.refresh_from_db()
    assert mous.state == MousState.QA2_PASS
    assert not Delivery.objects.exists()


# --- links ----------------------------------------------------------------------------------
def test_a_link_planted_in_a_run_folder_fails_the_delivery_and_nothing_is_delivered(
    analyst, tmp_path, settings
):
    mous = ready_mous(ebs=1)
    queued = delivery_request(mous=mous, kind=Delivery.Kind.PACKAGE, by=analyst.user)
    # After the request, the imaging run's log is swapped for a link to a file outside.
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the PI\n")
    run = Run.objects.get(mous=mous, script_version__script__kind=Script.Kind.IMAGING)
    log = run.folder_path / run.casa_log_name
    log.unlink()
    log.symlink_to(secret)

    failed = delivery_execute(queued.pk)

    assert failed.status == Delivery.Status.FAILED
    assert f"{run.casa_log_name} is a link" in failed.error
    assert "never follows links" in failed.error and "no package is at the final path" in failed.error
    assert str(settings.DATA_ROOT) not in failed.error
    assert not package_of(mous).exists()
    staged = tree(Path(settings.DELIVERIES_ROOT))
    assert "LINK" not in staged.values()
    assert hashlib.sha256(secret.read_bytes()).hexdigest() not in staged.values()
    mous.refresh_from_db()
    assert mous.state == MousState.DELIVERING  # start again once the link is gone


def test_a_link_inside_the_qa2_folder_fails_the_delivery(analyst, tmp_path):
    mous = ready_mous(ebs=1)
    queued = delivery_request(mous=mous, kind=Delivery.Kind.PACKAGE, by=analyst.user)
    eb = mous.execution_blocks.get()
    (eb_folder(eb) / "qa2" / "extra.png").symlink_to("/etc/passwd")

    failed = delivery_execute(queued.pk)

    assert failed.status == Delivery.Status.FAILED
    assert "qa2/extra.png is a link" in failed.error
    assert not package_of(mous).exists()


# --- resume and idempotence -----------------------------------------------------------------
def test_a_new_attempt_keeps_what_is_staged_and_copies_only_what_is_missing_or_wrong(
    analyst, settings, monkeypatch
):
    mous = ready_mous(ebs=2, image_bytes=200 * KIB)
    queued = delivery_request(mous=mous, kind=Delivery.Kind.PACKAGE, by=analyst.user)
    plan = delivery.package_plan(mous)
    staging = Path(settings.DELIVERIES_ROOT) / ".staging" / mous.folder_name
    # An earlier attempt staged half of the files: one of them truncated, one with other bytes
    # of the same size; a leftover file the plan does not name.
    half = sorted(plan.sources, key=lambda s: s.dest)[::2]
    for source in half:
        target = staging / source.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(
            source.data if source.data is not None else (source.base / source.name).read_bytes()
        )
    truncated, changed = [s for s in half if s.size > 1000 and s.data is None][:2]
    (staging / truncated.dest).write_bytes(
        (truncated.base / truncated.name).read_bytes()[: truncated.size // 2]
    )
    (staging / changed.dest).write_bytes(os.urandom(changed.size))
    (staging / "leftover.tmp").write_bytes(b"junk")
    kept_inodes = {s.dest: (staging / s.dest).stat().st_ino for s in half if s not in (truncated, changed)}

    copied: list[str] = []
    real_copy = delivery._copy

    def counting_copy(work, source, dir_fd, name):
        copied.append(source.dest)
        return real_copy(work, source, dir_fd, name)

    monkeypatch.setattr(delivery, "_copy", counting_copy)
    done = delivery_execute(queued.pk)

    assert done.status == Delivery.Status.DONE, done.error
    expected = {s.dest for s in plan.sources} - set(kept_inodes)
    assert sorted(copied) == sorted(expected)
    assert truncated.dest in copied and changed.dest in copied
    package = package_of(mous)
    files = tree(package)
    assert "leftover.tmp" not in files
    for entry in done.manifest["files"]:
        assert files[entry["path"]] == entry["sha256"]
        source = next(s for s in plan.sources if s.dest == entry["path"])
        data = source.data if source.data is not None else (source.base / source.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    for dest, inode in kept_inodes.items():
        assert (package / dest).stat().st_ino == inode, f"{dest} was copied again"


def test_executing_a_done_delivery_again_changes_nothing(analyst):
    mous = ready_mous(ebs=1)
    done = deliver(mous, analyst.user)
    assert done.status == Delivery.Status.DONE, done.error
    package = package_of(mous)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in package.rglob("*")}
    row = Delivery.objects.values().get(pk=done.pk)
    changes = StateChange.objects.filter(mous=mous).count()

    again = delivery_execute(done.pk)

    assert again.status == Delivery.Status.DONE
    assert Delivery.objects.values().get(pk=done.pk) == row
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in package.rglob("*")} == before
    assert StateChange.objects.filter(mous=mous).count() == changes


def test_a_package_already_in_place_with_its_manifest_counts_as_done(analyst, monkeypatch):
    """The worker was lost between the rename and the database: the package is complete; the
    next attempt verifies it against its manifest and the sources, and records it."""
    mous = ready_mous(ebs=1)
    real_done = delivery._done

    monkeypatch.setattr(delivery, "_done", database_lost)
    first = deliver(mous, analyst.user)
    assert first.status == Delivery.Status.FAILED
    package = package_of(mous)
    assert package.is_dir()
    mous.refresh_from_db()
    assert mous.state == MousState.DELIVERING
    inodes = {p: p.stat().st_ino for p in package.rglob("*")}

    monkeypatch.setattr(delivery, "_done", real_done)
    monkeypatch.setattr(delivery, "_copy", lambda *a: pytest.fail("nothing is copied again"))
    second = deliver(mous, analyst.user)

    assert second.status == Delivery.Status.DONE, second.error
    assert second.pk != first.pk
    assert second.manifest["delivery"] == first.pk  # the manifest of the package in place
    assert {p: p.stat().st_ino for p in package.rglob("*")} == inodes
    mous.refresh_from_db()
    assert mous.state == MousState.DELIVERED


def test_a_package_in_place_whose_source_changed_since_is_rebuilt_from_it(analyst, monkeypatch):
    """Lost between the rename and the database, then the README was edited: the package in
    place is ours but no longer the sources', so it goes back to staging; only the README is
    copied again, the rest is kept."""
    mous = ready_mous(ebs=1)
    real_done = delivery._done
    monkeypatch.setattr(delivery, "_done", database_lost)
    assert deliver(mous, analyst.user).status == Delivery.Status.FAILED
    package = package_of(mous)
    inodes = {p.relative_to(package).as_posix(): p.stat().st_ino for p in package.rglob("*") if p.is_file()}
    readme_save(mous=mous, text="README, edited after the first packaging\n", by=analyst.user)

    copied: list[str] = []
    real_copy = delivery._copy

    def counting_copy(work, source, dir_fd, name):
        copied.append(source.dest)
        return real_copy(work, source, dir_fd, name)

    monkeypatch.setattr(delivery, "_done", real_done)
    monkeypatch.setattr(delivery, "_copy", counting_copy)
    done = deliver(mous, analyst.user)

    assert done.status == Delivery.Status.DONE, done.error
    assert copied == ["README"]
    assert (package / "README").read_text() == "README, edited after the first packaging\n"
    assert done.manifest["delivery"] == done.pk
    for entry in done.manifest["files"]:
        assert sha256(package / entry["path"]) == entry["sha256"]
        if entry["path"] != "README":
            assert (package / entry["path"]).stat().st_ino == inodes[entry["path"]]


def test_a_folder_in_the_way_that_is_not_this_package_is_never_overwritten(analyst):
    mous = ready_mous(ebs=1)
    package = package_of(mous)
    package.mkdir(parents=True)
    (package / "someone_elses.txt").write_text("keep me")

    failed = deliver(mous, analyst.user)

    assert failed.status == Delivery.Status.FAILED
    assert "already exists and is not this MOUS's delivery" in failed.error
    assert tree(package) == {"someone_elses.txt": sha256(package / "someone_elses.txt")}


def test_the_throughput_limit_is_honoured(analyst, settings):
    mous = ready_mous(ebs=1, image_bytes=128 * KIB, log_bytes=4 * KIB, pngs=1)
    total = delivery.package_plan(mous).total
    settings.DELIVERY_MAX_BYTES_PER_SECOND = 1024 * KIB
    started = time.monotonic()
    done = deliver(mous, analyst.user)
    elapsed = time.monotonic() - started

    assert done.status == Delivery.Status.DONE, done.error
    # Copy and verification both read `total` bytes (the source, then the staged copy).
    assert elapsed >= 2 * total / settings.DELIVERY_MAX_BYTES_PER_SECOND * 0.9, (elapsed, total)


# --- QA2 fail -------------------------------------------------------------------------------
def test_a_qa2_fail_is_moved_to_qa2fails_verified_before_the_source_is_removed(
    analyst, settings, monkeypatch
):
    mous = ready_mous(ebs=2, state=MousState.QA2_FAIL)
    source = mous_folder(mous)
    (source / "Calibration_empty_dir").mkdir()
    before = tree(source)
    seen_source_at_verification: list[bool] = []
    real_verify = delivery.verify_staged

    def watching_verify(work, staging_fd, staged):
        seen_source_at_verification.append(source.is_dir())
        return real_verify(work, staging_fd, staged)

    monkeypatch.setattr(delivery, "verify_staged", watching_verify)
    done = deliver(mous, analyst.user, kind=Delivery.Kind.QA2_FAIL)

    assert done.status == Delivery.Status.DONE, done.error
    archive = Path(settings.QA2FAILS_ROOT) / mous.folder_name
    assert done.target == str(archive)
    manifest_name = f"{mous.folder_name}.manifest.json"
    assert tree(archive) == {**before, manifest_name: sha256(archive / manifest_name)}
    assert (archive / "Calibration_empty_dir").is_dir()
    assert len(seen_source_at_verification) == len(before) and all(seen_source_at_verification)
    assert {f["path"]: f["sha256"] for f in done.manifest["files"]} == before
    assert not source.exists()
    mous.refresh_from_db()
    assert mous.state == MousState.FAILED_ARCHIVED
    assert StateChange.objects.filter(mous=mous).latest("pk").changed_by == analyst.user


def test_a_qa2_fail_whose_copy_does_not_verify_keeps_the_source(analyst, settings, monkeypatch):
    mous = ready_mous(ebs=1, state=MousState.QA2_FAIL)
    source = mous_folder(mous)
    before = tree(source)
    real_verify = delivery.verify_staged

    def corrupting_verify(work, staging_fd, staged):
        if staged.source.dest.endswith("target_cube.pbcor.fits"):
            (Path(settings.QA2FAILS_ROOT) / ".staging" / mous.folder_name / staged.source.dest).write_bytes(
                b"bit rot"
            )
        return real_verify(work, staging_fd, staged)

    monkeypatch.setattr(delivery, "verify_staged", corrupting_verify)
    failed = deliver(mous, analyst.user, kind=Delivery.Kind.QA2_FAIL)

    assert failed.status == Delivery.Status.FAILED
    assert "verification failed" in failed.error and "target_cube.pbcor.fits" in failed.error
    assert "the MOUS folder was not removed" in failed.error
    assert tree(source) == before
    assert not (Path(settings.QA2FAILS_ROOT) / mous.folder_name).exists()
    mous.refresh_from_db()
    assert mous.state == MousState.QA2_FAIL

    # Started again: the corrupted file is copied anew, the rest is kept; then it is archived.
    monkeypatch.setattr(delivery, "verify_staged", real_verify)
    done = deliver(mous, analyst.user, kind=Delivery.Kind.QA2_FAIL)
    assert done.status == Delivery.Status.DONE, done.error
    assert not source.exists()
    assert {f["path"]: f["sha256"] for f in done.manifest["files"]} == before


def test_a_qa2_fail_whose_worker_was_lost_after_removing_the_source_is_recorded(
    analyst, settings, monkeypatch
):
    """The folder was archived, verified and removed, then the database went away: the MOUS is
    still QA2 fail, its folder gone. Started again, the archive is checked against its manifest
    and recorded; nothing is copied."""
    mous = ready_mous(ebs=1, state=MousState.QA2_FAIL)
    before = tree(mous_folder(mous))
    real_done = delivery._done
    monkeypatch.setattr(delivery, "_done", database_lost)
    first = deliver(mous, analyst.user, kind=Delivery.Kind.QA2_FAIL)
    assert first.status == Delivery.Status.FAILED
    assert not mous_folder(mous).exists()
    mous.refresh_from_db()
    assert mous.state == MousState.QA2_FAIL

    monkeypatch.setattr(delivery, "_done", real_done)
    monkeypatch.setattr(delivery, "_copy", lambda *a: pytest.fail("nothing is copied again"))
    done = deliver(mous, analyst.user, kind=Delivery.Kind.QA2_FAIL)

    assert done.status == Delivery.Status.DONE, done.error
    archive = Path(settings.QA2FAILS_ROOT) / mous.folder_name
    assert {k: v for k, v in tree(archive).items() if not k.endswith(".manifest.json")} == before
    mous.refresh_from_db()
    assert mous.state == MousState.FAILED_ARCHIVED


def test_an_archive_that_no_longer_matches_its_manifest_is_left_for_a_person(analyst, settings, monkeypatch):
    mous = ready_mous(ebs=1, state=MousState.QA2_FAIL)
    monkeypatch.setattr(delivery, "_done", database_lost)
    assert deliver(mous, analyst.user, kind=Delivery.Kind.QA2_FAIL).status == Delivery.Status.FAILED
    archive = Path(settings.QA2FAILS_ROOT) / mous.folder_name
    (archive / "README").write_text("changed in the archive\n")

    failed = deliver(mous, analyst.user, kind=Delivery.Kind.QA2_FAIL)

    assert failed.status == Delivery.Status.FAILED
    assert "no longer matches its manifest: a person must look" in failed.error
    assert (archive / "README").read_text() == "changed in the archive\n"
    mous.refresh_from_db()
    assert mous.state == MousState.QA2_FAIL


# --- the reaper -------------------------------------------------------------------------------
def test_the_reaper_fails_deliveries_whose_heartbeat_stopped(analyst):
    from datetime import timedelta

    from django.utils import timezone

    old = timezone.now() - timedelta(minutes=5)
    rows = {}
    for status, beat in (
        (Delivery.Status.COPYING, old),
        (Delivery.Status.VERIFYING, old),
        (Delivery.Status.COPYING, timezone.now()),
        (Delivery.Status.QUEUED, None),
    ):
        mous = MousFactory(state=MousState.DELIVERING)
        rows[(status, beat is old)] = Delivery.objects.create(
            mous=mous, kind=Delivery.Kind.PACKAGE, status=status, heartbeat_at=beat
        )

    reaped = delivery.deliveries_reap_stale(stale_after=60)

    assert sorted(reaped) == sorted(
        [rows[(Delivery.Status.COPYING, True)].pk, rows[(Delivery.Status.VERIFYING, True)].pk]
    )
    for (status, stale), row in rows.items():
        row.refresh_from_db()
        if stale:
            assert row.status == Delivery.Status.FAILED
            assert row.error.startswith("worker lost") and row.error.endswith("start again to resume")
        else:
            assert row.status == status
