"""Bringing an EB's raw data in: from a path under INGEST_ROOTS and as an uploaded tgz, through
the pages and the API, with the real worker and real CASA; and the bad-input battery: each bad
input gets a clear message, leaves nothing in raw/ and leaves the EB as it was."""

import datetime as dt
import io
import os
import shutil
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assignments.datafiles import eb_folder
from assignments.models import ExecutionBlock, Person
from assignments.staging import mous_stage
from calibration import ingest
from calibration.models import DataIngest, DataSummary
from calibration.simulate import presets
from tests.factories import ExecutionBlockFactory, MousFactory, PersonFactory

# A simulated build names its EB in its OBSERVATION table ("ExecBlock <uid from the MS name>").
SIM_UID = presets.small().eb_uid
TIMEOUT = 300

pytestmark = pytest.mark.django_db(transaction=True)


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def ingest_root(settings, session_data_root) -> Path:
    """The worker's INGEST_ROOTS (tests/conftest.py) and ours; a private folder below it per test."""
    root = (session_data_root.parent / "ingest").resolve()
    settings.INGEST_ROOTS = [root]
    settings.INGEST_UPLOAD_DIR = ""  # DATA_ROOT/.ingest-uploads, as the worker has it
    folder = root / uuid.uuid4().hex[:8]
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def drm(db) -> Person:
    return PersonFactory(user__username="ingestdrm", role=Person.Role.DRM, initials="ID")


@pytest.fixture
def drm_client(drm) -> Client:
    client = Client()
    client.force_login(drm.user)
    return client


def make_eb(uid: str = SIM_UID) -> ExecutionBlock:
    eb = ExecutionBlockFactory(mous=MousFactory(), uid=uid)
    mous_stage(eb.mous)
    return eb


def wait_done(item_id: int, timeout: float = TIMEOUT) -> DataIngest:
    started = time.monotonic()
    while True:
        item = DataIngest.objects.get(pk=item_id)
        if not item.is_active:
            return item
        assert time.monotonic() - started < timeout, f"ingest {item_id} still {item.status}"
        time.sleep(0.2)


def raw_entries(eb: ExecutionBlock) -> list[str]:
    raw = eb_folder(eb) / "raw"
    return sorted(p.name for p in raw.iterdir()) if raw.exists() else []


def uploads_left() -> list[str]:
    folder = ingest.upload_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def assert_unchanged(eb: ExecutionBlock) -> None:
    """Nothing half-copied, the EB as it was."""
    fresh = ExecutionBlock.objects.get(pk=eb.pk)
    assert (fresh.data_status, fresh.data_name) == (eb.data_status, eb.data_name)
    assert raw_entries(eb) == [], raw_entries(eb)
    assert not DataSummary.objects.filter(execution_block=eb).exists()


def tgz_of(folder: Path, target: Path, arcname: str | None = None) -> Path:
    with tarfile.open(target, "w:gz", compresslevel=1) as tar:
        tar.add(folder, arcname=arcname or folder.name)
    return target


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def upload(client: Client, eb: ExecutionBlock, name: str, data: bytes):
    return client.post(
        reverse("executionblock-ingest-upload", args=[eb.pk]),
        {"file": SimpleUploadedFile(name, data, content_type="application/gzip")},
    )


# --- the good paths ----------------------------------------------------------------------------
@pytest.mark.casa
def test_drm_brings_an_ms_in_from_a_path_through_the_pages(
    celery_worker_process, drm_client, ingest_root, small_eb
):
    source = shutil.copytree(small_eb.ms, ingest_root / "uid___A002_Xsim_X1.ms")
    before = sorted(p.name for p in source.iterdir())
    eb = make_eb()

    page = drm_client.get(reverse("calibration-eb", args=[eb.pk])).content.decode()
    assert reverse("calibration-eb-ingest", args=[eb.pk]) in page  # the "Bring data in" link
    form = drm_client.get(reverse("calibration-eb-ingest", args=[eb.pk])).content.decode()
    assert 'id="ingest-path-form"' in form and str(ingest_root.parent) in form

    response = drm_client.post(reverse("calibration-eb-ingest-path", args=[eb.pk]), {"path": str(source)})
    assert response.status_code == 302
    item = DataIngest.objects.get(execution_block=eb)
    assert response.url == reverse("calibration-ingest", args=[item.pk])
    assert 'id="ingest-progress"' in drm_client.get(response.url).content.decode()

    item = wait_done(item.pk)
    assert item.status == DataIngest.Status.DONE, item.error
    status = drm_client.get(reverse("calibration-ingest-status", args=[item.pk])).json()
    assert status["status"] == "DONE" and status["percent"] == 100
    assert status["bytes_done"] == status["bytes_total"] > 1_000_000

    eb.refresh_from_db()
    assert eb.data_status == ExecutionBlock.DataStatus.PRESENT
    assert eb.data_name == "raw/uid___A002_Xsim_X1.ms"
    assert raw_entries(eb) == ["uid___A002_Xsim_X1.ms"]  # no staging folder left beside it
    assert (eb_folder(eb) / eb.data_name / "table.dat").is_file()
    assert sorted(p.name for p in source.iterdir()) == before  # copied, never moved

    summary = item.summary
    truth = small_eb.truth
    assert [a["name"] for a in summary["antennas"]] == list(truth["antennas"])
    assert summary["wvr_spws"] and any(s["wvr"] for s in summary["spws"])
    assert {"CALIBRATE_BANDPASS#ON_SOURCE", "OBSERVE_TARGET#ON_SOURCE"} <= {
        i for f in summary["fields"] for i in f["intents"]
    }
    assert summary["scans"] and summary["time_begin"] < summary["time_end"]
    assert summary["execblock_uids"] == [SIM_UID] and summary["eb_uid_checked"] is True
    assert 'id="last-ingest"' in drm_client.get(reverse("calibration-eb", args=[eb.pk])).content.decode()


@pytest.mark.casa
def test_a_tgz_of_an_ms_uploaded_through_the_api(celery_worker_process, drm_client, small_eb, tmp_path):
    eb = make_eb()
    archive = tgz_of(small_eb.ms, tmp_path / "eb.tgz")
    response = upload(drm_client, eb, "eb.tgz", archive.read_bytes())
    assert response.status_code == 202, response.content
    item = wait_done(response.json()["id"])
    assert item.status == DataIngest.Status.DONE, item.error
    eb.refresh_from_db()
    assert (eb.data_status, eb.data_name) == (ExecutionBlock.DataStatus.PRESENT, f"raw/{small_eb.ms.name}")
    assert raw_entries(eb) == [small_eb.ms.name]
    assert uploads_left() == []  # the worker removed the upload once done
    listed = drm_client.get(reverse("executionblock-ingest", args=[eb.pk])).json()
    assert [i["status"] for i in listed] == ["DONE"]
    detail = drm_client.get(reverse("dataingest-detail", args=[item.pk])).json()
    assert detail["data_name"] == eb.data_name and detail["source_kind"] == "upload"


@pytest.mark.casa
def test_an_archive_of_the_ms_files_themselves_is_named_after_the_archive(
    celery_worker_process, drm_client, small_eb, tmp_path
):
    eb = make_eb()
    archive = tgz_of(small_eb.ms, tmp_path / "night2.tgz", arcname=".")
    item = wait_done(upload(drm_client, eb, "night2.tar.gz", archive.read_bytes()).json()["id"])
    assert item.status == DataIngest.Status.DONE, item.error
    assert ExecutionBlock.objects.get(pk=eb.pk).data_name == "raw/night2.ms"


# --- refused at once (nothing stored, nothing queued) ---------------------------------------------
def test_refused_paths_say_why_and_queue_nothing(drm_client, ingest_root, tmp_path):
    eb = make_eb()
    outside = tmp_path / "outside.ms"
    outside.mkdir()
    (outside / "table.dat").write_bytes(b"x")
    (ingest_root / "escape.ms").symlink_to(outside)
    (ingest_root / "random").mkdir()
    (ingest_root / "random" / "notes.txt").write_text("hello")
    (ingest_root / "notes.txt").write_text("hello")
    cases = {
        str(outside): "outside the ingest roots",
        # Where a link points is never said.
        str(ingest_root / "escape.ms"): f"{ingest_root / 'escape.ms'} is a link: links are not followed",
        str(ingest_root / ".." / ".." / "outside.ms"): "'..' is not accepted",
        str(ingest_root / "missing.ms"): "does not exist",
        str(ingest_root / ("x" * 300)): "cannot be opened (File name too long)",
        str(ingest_root / "random" / "notes.txt" / "deeper.ms"): "does not exist",
        "/" + "a/" * 600: "at most 1000 are accepted",
        "relative/path.ms": "give an absolute path",
        str(ingest_root / "random"): "random is neither an MS (no table.dat) nor an ASDM (no ASDM.xml)",
        str(ingest_root / "notes.txt"): "notes.txt is not an MS, an ASDM, a UVFITS file or a tar/tgz of one",
    }
    for path, message in cases.items():
        response = drm_client.post(
            reverse("executionblock-ingest", args=[eb.pk]), {"path": path}, "application/json"
        )
        assert response.status_code == 400, (path, response.content)  # bad input, not a conflict
        assert message in response.json()["detail"], (path, response.json())
        if path != str(outside):
            assert str(outside) not in response.json()["detail"]  # never where a link leads
        page = drm_client.post(
            reverse("calibration-eb-ingest-path", args=[eb.pk]), {"path": path}, follow=True
        )
        assert message in page.content.decode().replace("&#x27;", "'"), path
    assert not DataIngest.objects.exists()
    assert_unchanged(eb)


def test_an_eb_with_data_or_a_running_ingest_is_refused(drm_client, ingest_root):
    eb = make_eb()
    (ingest_root / "x.ms").mkdir()
    (ingest_root / "x.ms" / "table.dat").write_bytes(b"x")
    DataIngest.objects.create(execution_block=eb, source_kind="path", source="/elsewhere", status="COPYING")
    response = drm_client.post(
        reverse("executionblock-ingest", args=[eb.pk]),
        {"path": str(ingest_root / "x.ms")},
        "application/json",
    )
    assert response.status_code == 409 and "is still copying" in response.json()["detail"]
    DataIngest.objects.update(status="FAILED")
    ExecutionBlock.objects.filter(pk=eb.pk).update(data_status="present", data_name="raw/old.ms")
    response = drm_client.post(
        reverse("executionblock-ingest", args=[eb.pk]),
        {"path": str(ingest_root / "x.ms")},
        "application/json",
    )
    assert response.status_code == 409
    assert response.json()["detail"] == f"EB {eb.uid} already has its data (raw/old.ms); nothing was changed"
    assert DataIngest.objects.count() == 1


def test_uploads_that_are_not_archives_or_too_large_are_refused_and_removed(
    drm_client, settings, ingest_root
):
    eb = make_eb()
    response = upload(drm_client, eb, "eb.tgz", b"this is not a tar file at all" * 40)
    assert response.status_code == 400 and "eb.tgz is not a tar or tgz archive" in response.json()["detail"]
    response = drm_client.post(reverse("executionblock-ingest-upload", args=[eb.pk]), {})
    assert response.status_code == 400 and "multipart field 'file'" in response.json()["file"][0]

    settings.INGEST_UPLOAD_MAX_BYTES = 100_000
    # Declared too large: answered before the body is read.
    response = upload(drm_client, eb, "big.tar", b"\0" * 200_000)
    assert response.status_code == 413 and "over the upload limit" in response.json()["detail"]
    # Declared within the multipart slack, but the file itself is over: stopped while streaming.
    response = upload(drm_client, eb, "big.tar", b"\0" * 120_000)
    assert response.status_code == 413 and "over the upload limit" in response.json()["detail"]
    page = drm_client.post(
        reverse("calibration-eb-ingest-upload", args=[eb.pk]),
        {"file": SimpleUploadedFile("big.tar", b"\0" * 120_000)},
        follow=True,
    )
    assert "Upload refused: the file is over the" in page.content.decode()
    assert uploads_left() == []
    assert not DataIngest.objects.exists()
    assert_unchanged(eb)


def test_only_drms_and_data_analysts_bring_data_in(celery_worker_process, ingest_root):
    eb = make_eb()
    (ingest_root / "x.ms").mkdir()
    (ingest_root / "x.ms" / "table.dat").write_bytes(b"x")
    reducer = Client()
    reducer.force_login(PersonFactory(user__username="ingestreducer").user)
    url = reverse("executionblock-ingest", args=[eb.pk])
    response = reducer.post(url, {"path": str(ingest_root / "x.ms")}, "application/json")
    assert response.status_code == 403 and "DRM or a data analyst" in response.json()["detail"]
    assert (
        reducer.post(reverse("calibration-eb-ingest-path", args=[eb.pk]), {"path": "/x"}).status_code == 403
    )
    assert reducer.post(reverse("calibration-eb-ingest-upload", args=[eb.pk]), {}).status_code == 403
    page = reducer.get(reverse("calibration-eb", args=[eb.pk])).content.decode()
    assert 'id="bring-data-in"' not in page
    analyst = Client()
    analyst.force_login(PersonFactory(user__username="ingestanalyst", role=Person.Role.DATA_ANALYST).user)
    assert 'id="bring-data-in"' in analyst.get(reverse("calibration-eb", args=[eb.pk])).content.decode()
    response = analyst.post(url, {"path": str(ingest_root / "x.ms")}, "application/json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "QUEUED"
    # The worker takes it (and refuses the fake MS): wait, so no task writes while the test ends.
    assert wait_done(response.json()["id"]).status == DataIngest.Status.FAILED


# --- failed by the worker: the battery ------------------------------------------------------------
def _ms_tgz_cut(small_eb, tmp_path) -> bytes:
    data = tgz_of(small_eb.ms, tmp_path / "cut.tgz").read_bytes()
    return data[: len(data) // 2]


def _ms_tar_cut_between_members(small_eb, tmp_path) -> bytes:
    """An uncompressed tar cut exactly after a member: tarfile alone would call it complete."""
    path = tmp_path / "cut.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(small_eb.ms, arcname=small_eb.ms.name)
    with tarfile.open(path) as tar:
        members = tar.getmembers()
        middle = members[len(members) // 2]
        end = middle.offset_data + -(-middle.size // 512) * 512
    return path.read_bytes()[:end]


BAD_ARCHIVES = {
    "dotdot": (
        lambda *_: tar_bytes((member("x.ms", tarfile.DIRTYPE), None), (member("x.ms/../../evil.txt"), b"x")),
        "the archive is refused: x.ms/../../evil.txt leads out of the archive (..)",
    ),
    "absolute": (
        lambda *_: tar_bytes((member("/tmp/evil.ms/table.dat"), b"x")),
        "the archive is refused: /tmp/evil.ms/table.dat is an absolute path",
    ),
    "symlink": (
        lambda *_: tar_bytes(
            (member("x.ms", tarfile.DIRTYPE), None),
            (member("x.ms/table.dat", tarfile.SYMTYPE, "/etc/passwd"), None),
        ),
        "the archive is refused: x.ms/table.dat is a link",
    ),
    "hardlink": (
        lambda *_: tar_bytes(
            (member("x.ms", tarfile.DIRTYPE), None),
            (member("x.ms/table.dat", tarfile.LNKTYPE, "/etc/passwd"), None),
        ),
        "the archive is refused: x.ms/table.dat is a link",
    ),
    "device": (
        lambda *_: tar_bytes(
            (member("x.ms", tarfile.DIRTYPE), None), (member("x.ms/dev", tarfile.CHRTYPE), None)
        ),
        "x.ms/dev is a device, pipe or other special file",
    ),
    "truncated-tgz": (_ms_tgz_cut, "the archive is damaged or truncated"),
    "truncated-at-a-member": (
        _ms_tar_cut_between_members,
        "the archive is truncated (it has no end-of-archive marker)",
    ),
    "two-things": (
        lambda *_: tar_bytes((member("a.ms/table.dat"), b"x"), (member("b.ms/table.dat"), b"x")),
        "the archive holds 2 entries at its top (a.ms, b.ms); it must hold one MS, ASDM or UVFITS file",
    ),
    "long-name": (
        lambda *_: tar_bytes((member("x.ms", tarfile.DIRTYPE), None), (member("x.ms/" + "n" * 300), b"x")),
        "the archive cannot be extracted (File name too long: x.ms/nnn",
    ),
    "not-an-ms": (
        lambda *_: tar_bytes((member("x.ms/table.dat"), b"not a casa table" * 10)),
        "x.ms cannot be read as an MS:",
    ),
}


@pytest.mark.casa
@pytest.mark.parametrize("case", list(BAD_ARCHIVES))
def test_bad_archives_fail_clearly_and_leave_nothing(
    case, celery_worker_process, drm_client, small_eb, tmp_path
):
    make_archive, message = BAD_ARCHIVES[case]
    eb = make_eb()
    response = upload(drm_client, eb, f"{case}.tar", make_archive(small_eb, tmp_path))
    assert response.status_code == 202, response.content
    item = wait_done(response.json()["id"])
    assert item.status == DataIngest.Status.FAILED
    assert message in item.error, item.error
    assert "\n" not in item.error
    # Shown to every signed-in user: no server path (DATA_ROOT, the staging folder, uploads).
    assert str(eb_folder(eb).parent.parent) not in item.error and ".incoming-" not in item.error
    assert str(ingest.upload_dir()) not in item.error
    assert_unchanged(eb)
    assert uploads_left() == []
    assert not (tmp_path.parent / "evil.txt").exists()
    status = drm_client.get(reverse("calibration-ingest-status", args=[item.pk])).json()
    assert status["status"] == "FAILED" and status["error"] == item.error
    assert item.error in drm_client.get(reverse("calibration-eb", args=[eb.pk])).content.decode().replace(
        "&#x27;", "'"
    )


@pytest.mark.casa
def test_data_of_another_eb_is_refused(celery_worker_process, drm_client, ingest_root, small_eb):
    source = shutil.copytree(small_eb.ms, ingest_root / "night.ms")
    eb = make_eb(uid="uid://A002/X999/X9")
    response = drm_client.post(
        reverse("executionblock-ingest", args=[eb.pk]), {"path": str(source)}, "application/json"
    )
    item = wait_done(response.json()["id"])
    assert item.status == DataIngest.Status.FAILED
    assert item.error == f"the data is EB {SIM_UID}, not uid://A002/X999/X9; nothing was changed"
    assert_unchanged(eb)
    assert (source / "table.dat").is_file()


@pytest.mark.casa
def test_links_inside_the_data_and_links_swapped_after_the_request_are_refused(
    celery_worker_process, drm_client, ingest_root, small_eb, tmp_path
):
    source = shutil.copytree(small_eb.ms, ingest_root / "linked.ms")
    os.symlink("/etc/hostname", source / "ANTENNA" / "table.f9")
    eb = make_eb()
    response = drm_client.post(
        reverse("executionblock-ingest", args=[eb.pk]), {"path": str(source)}, "application/json"
    )
    item = wait_done(response.json()["id"])
    assert item.status == DataIngest.Status.FAILED
    assert item.error == "linked.ms/ANTENNA/table.f9 is a link; links inside the data are not accepted"
    assert_unchanged(eb)

    # A path that was inside at the request and points outside when the worker reads it.
    outside = shutil.copytree(small_eb.ms, tmp_path / "outside.ms")
    swapped = ingest_root / "swapped.ms"
    swapped.mkdir()
    (swapped / "table.dat").write_bytes(b"x")
    item = DataIngest.objects.create(execution_block=eb, source_kind="path", source=str(swapped))
    shutil.rmtree(swapped)
    swapped.symlink_to(outside)
    from calibration.tasks import ingest_execute

    ingest_execute.delay(item.pk)
    item = wait_done(item.pk)
    assert item.status == DataIngest.Status.FAILED
    assert item.error == f"{swapped} is a link: links are not followed below the ingest roots"
    assert_unchanged(eb)


# --- a worker that died --------------------------------------------------------------------------
def test_the_reaper_fails_an_ingest_whose_worker_died_and_removes_its_staging(settings, ingest_root):
    eb = make_eb()
    item = DataIngest.objects.create(
        execution_block=eb,
        source_kind="path",
        source=str(ingest_root),
        status="COPYING",
        heartbeat_at=timezone.now() - dt.timedelta(seconds=settings.INGEST_STALE_AFTER_SECONDS + 5),
    )
    fresh = DataIngest.objects.create(
        execution_block=make_eb(uid="uid://A002/X998/X8"),
        source_kind="path",
        source=str(ingest_root),
        status="CHECKING",
        heartbeat_at=timezone.now(),
    )
    staging = ingest.staging_folder(item)
    staging.mkdir(parents=True)
    (staging / "half.dat").write_bytes(b"x" * 100)
    uploads = ingest.upload_dir()
    uploads.mkdir(parents=True, exist_ok=True)
    long_ago = time.time() - settings.INGEST_STALE_AFTER_SECONDS - 5
    for name in ("cut.part", "orphan.upload", "streaming.part", "queued.upload"):
        (uploads / name).write_bytes(b"x")
    for name in ("cut.part", "orphan.upload", "queued.upload"):
        os.utime(uploads / name, (long_ago, long_ago))
    DataIngest.objects.filter(pk=fresh.pk).update(upload_name="queued.upload")
    assert ingest.ingests_reap_stale() == [item.pk]
    # Abandoned uploads go; one still being written and one an active ingest will read stay.
    assert uploads_left() == ["queued.upload", "streaming.part"]
    item.refresh_from_db()
    assert item.status == "FAILED" and "the worker stopped during the ingest" in item.error
    assert not staging.exists() and raw_entries(eb) == []
    assert DataIngest.objects.get(pk=fresh.pk).status == "CHECKING"


# --- UVFITS and ASDM ------------------------------------------------------------------------------
def _ngc5921_fits() -> Path:
    import importlib.util

    return Path(importlib.util.find_spec("casadata").origin).parent / "__data__" / "demo" / "NGC5921.fits"


@pytest.mark.casa
def test_a_uvfits_file_is_checked_through_a_scratch_ms_and_gives_the_generator_its_summary(
    celery_worker_process, drm_client, ingest_root
):
    source = shutil.copy(_ngc5921_fits(), ingest_root / "NGC5921.fits")
    eb = make_eb(uid="uid://A002/Xsim02/X9")
    response = drm_client.post(
        reverse("executionblock-ingest", args=[eb.pk]), {"path": str(source)}, "application/json"
    )
    item = wait_done(response.json()["id"])
    assert item.status == DataIngest.Status.DONE, item.error
    eb.refresh_from_db()
    assert (eb.data_status, eb.data_name) == ("present", "raw/NGC5921.fits")
    assert raw_entries(eb) == ["NGC5921.fits"]  # the scratch MS went with the staging folder
    assert item.summary["kind"] == "uvfits" and item.summary["eb_uid_checked"] is False
    assert item.summary["observatory"] == "VLA" and len(item.summary["antennas"]) > 20
    # No MS to read until step 0 has imported it: the generator gets the scratch MS's summary now.
    generator = DataSummary.objects.get(execution_block=eb).summary
    assert {"science_spws", "antennas", "fields", "scans"} <= set(generator)


@pytest.mark.casa
def test_an_asdm_that_casa_cannot_import_fails_clearly(celery_worker_process, drm_client, ingest_root):
    asdm = ingest_root / "uid___A002_X1_X2"
    asdm.mkdir()
    (asdm / "ASDM.xml").write_text(
        '<?xml version="1.0"?><ASDM><Entity entityId="uid://A002/X1/X2" entityTypeName="ASDM"/></ASDM>'
    )
    eb = make_eb(uid="uid://A002/X1/X2")
    response = drm_client.post(
        reverse("executionblock-ingest", args=[eb.pk]), {"path": str(asdm)}, "application/json"
    )
    item = wait_done(response.json()["id"])
    assert item.status == DataIngest.Status.FAILED
    assert item.error.startswith("uid___A002_X1_X2 cannot be read as an ASDM: "), item.error
    assert_unchanged(eb)


def test_the_asdm_uid_is_read_from_asdm_xml(tmp_path):
    (tmp_path / "ASDM.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><ASDM xmlns="http://Alma/XASDM/ASDM" schemaVersion="3">'
        '<Entity entityId="uid://A002/Xabc/X12" entityIdEncrypted="na" entityTypeName="ASDM"/></ASDM>'
    )
    assert ingest.asdm_uid(tmp_path) == "uid://A002/Xabc/X12"
    (tmp_path / "ASDM.xml").write_text("<ASDM")
    with pytest.raises(ingest.IngestFailed, match=r"ASDM\.xml cannot be read"):
        ingest.asdm_uid(tmp_path)


# --- review fixes: confinement by fds, limits, messages, uploads, cancel, the check -------------
def fresh_eb() -> ExecutionBlock:
    return make_eb(uid=f"uid://A002/X{uuid.uuid4().hex[:8]}/X1")


def _copying_row(eb: ExecutionBlock, source: str = "/x") -> DataIngest:
    """A row as the worker has it while copying (Progress writes need the COPYING status)."""
    return DataIngest.objects.create(
        execution_block=eb, source_kind="path", source=source, status="COPYING", heartbeat_at=timezone.now()
    )


def _staging(item: DataIngest) -> Path:
    staging = ingest.staging_folder(item)
    staging.mkdir(parents=True)
    return staging


def _fake_ms(folder: Path) -> Path:
    (folder / "ANTENNA").mkdir(parents=True)
    (folder / "table.dat").write_bytes(b"t" * 100)
    (folder / "ANTENNA" / "table.f0").write_bytes(b"a" * 100)
    return folder


def test_a_folder_swapped_for_a_link_after_the_scan_is_never_read(ingest_root, tmp_path):
    """The race the path-based copy lost: scanned inside the root, swapped for a link to a secret
    folder (or /proc/self) before the copy. The copy opens every folder with O_NOFOLLOW relative
    to its parent's fd and compares (dev, ino) with the scan."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "table.f0").write_text("the secret")
    for target in (secret, Path("/proc/self")):
        source = _fake_ms(ingest_root / f"swap-{target.name}.ms")
        eb = fresh_eb()
        item = _copying_row(eb, str(source))
        staging = _staging(item)
        with ingest.open_source(str(source)) as opened:
            tree = ingest.scan_source(opened)
            os.rename(source / "ANTENNA", source / "ANTENNA.old")
            os.symlink(target, source / "ANTENNA")
            with pytest.raises(ingest.IngestFailed, match=r"ANTENNA was replaced while it was copied"):
                ingest.copy_data(item, opened, staging, tree)
        copied = [p.read_bytes() for p in staging.rglob("*") if p.is_file() and not p.is_symlink()]
        assert (
            b"the secret" not in b"".join(copied)
            and not (staging / "data" / source.name / "ANTENNA" / "status").exists()
        )

    # A file replaced by another one, and a hard-linked file, are refused too.
    source = _fake_ms(ingest_root / "replaced.ms")
    item = _copying_row(fresh_eb(), str(source))
    with ingest.open_source(str(source)) as opened:
        tree = ingest.scan_source(opened)
        os.rename(source / "table.dat", source / "table.dat.old")  # kept: its inode is not reused
        (source / "table.dat").write_bytes(b"t" * 100)
        with pytest.raises(ingest.IngestFailed, match=r"replaced.ms/table.dat was replaced"):
            ingest.copy_data(item, opened, _staging(item), tree)
    os.link(secret / "table.f0", source / "ANTENNA" / "table.f1")
    with ingest.open_source(str(source)) as opened, pytest.raises(ingest.IngestFailed, match="2 hard links"):
        ingest.scan_source(opened)


def test_links_on_the_way_to_the_source_are_refused_without_saying_where_they_lead(
    drm_client, ingest_root, tmp_path
):
    eb = fresh_eb()
    outside = _fake_ms(tmp_path / "elsewhere" / "x.ms")
    (ingest_root / "via").symlink_to(outside.parent)
    (ingest_root / "proc").symlink_to("/proc/self")
    for path in (ingest_root / "via" / "x.ms", ingest_root / "proc" / "root"):
        response = drm_client.post(
            reverse("executionblock-ingest", args=[eb.pk]), {"path": str(path)}, "application/json"
        )
        assert response.status_code == 400, response.content
        detail = response.json()["detail"]
        assert "is a link: links are not followed below the ingest roots" in detail, detail
        assert str(outside.parent) not in detail and "/proc/self" not in detail
    assert not DataIngest.objects.exists()


def test_the_copy_keeps_file_modes_whichever_copy_branch_ran(ingest_root):
    source = _fake_ms(ingest_root / "modes.ms")
    os.chmod(source / "table.dat", 0o640)
    os.chmod(source / "ANTENNA" / "table.f0", 0o604)
    item = _copying_row(fresh_eb(), str(source))
    with ingest.open_source(str(source)) as opened:
        copy = ingest.copy_data(item, opened, _staging(item))
    assert (copy / "table.dat").stat().st_mode & 0o777 == 0o640
    assert (copy / "ANTENNA" / "table.f0").stat().st_mode & 0o777 == 0o604
    assert (copy / "table.dat").read_bytes() == b"t" * 100


def test_what_an_archive_extracts_to_is_limited(settings, ingest_root, tmp_path):
    eb = fresh_eb()
    many = tar_bytes(*[(member(f"x.ms/f{i}"), b"") for i in range(30)])
    big = tar_bytes((member("x.ms/table.dat"), b"\0" * 50_000))

    def extract(data: bytes) -> DataIngest:
        item = _copying_row(fresh_eb())
        staging = _staging(item)
        with pytest.raises(ingest.IngestFailed) as failed:
            ingest.extract_archive(item, io.BytesIO(data), len(data), staging)
        written = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
        return str(failed.value), written

    settings.INGEST_EXTRACT_MAX_MEMBERS = 10
    message, _ = extract(many)
    assert message == "the archive is refused: it holds more than 10 members"
    settings.INGEST_EXTRACT_MAX_MEMBERS = 1000
    settings.INGEST_EXTRACT_MAX_BYTES = 10_000
    message, written = extract(big)
    assert message == "the archive is refused: it extracts to more than 10,000 bytes" and written == 0
    settings.INGEST_EXTRACT_MAX_BYTES = 10**12
    settings.INGEST_FREE_SPACE_MARGIN_BYTES = 10**18  # more than any disk: nothing fits
    message, written = extract(big)
    assert "extracts to more than the data disk can take" in message and written == 0
    # The same free-space check before a copy.
    source = _fake_ms(ingest_root / "nospace.ms")
    item = _copying_row(eb, str(source))
    with (
        ingest.open_source(str(source)) as opened,
        pytest.raises(ingest.IngestFailed, match=r"keeps .* spare"),
    ):
        ingest.copy_data(item, opened, _staging(item))


def test_archive_errors_never_show_server_paths(settings, tmp_path):
    item = _copying_row(fresh_eb())
    staging = _staging(item)
    data = tar_bytes((member("x.ms", tarfile.DIRTYPE), None), (member("x.ms/" + "n" * 300), b"x"))
    with pytest.raises(ingest.IngestFailed) as failed:
        ingest.extract_archive(item, io.BytesIO(data), len(data), staging)
    message = str(failed.value)
    assert message.startswith("the archive cannot be extracted (File name too long: x.ms/nnn"), message
    assert str(settings.DATA_ROOT) not in message and ".incoming-" not in message
    assert ingest.scrub(
        f"{staging}/archive/a: {ingest.upload_dir()}/b.upload {settings.DATA_ROOT}/c", staging
    ) == ("archive/a: b.upload c")


def _raw_upload(live_server, path: str, cookies: dict[str, str], declared: int, sent: int) -> bytes:
    """POST a multipart upload over a real socket, sending only `sent` bytes of the file while
    declaring `declared`: what the server answers before the rest arrives (b"" if nothing).
    More than one 4 MB read chunk is sent: the parser reads that much before it sees the file."""
    import socket
    from urllib.parse import urlsplit

    host = urlsplit(live_server.url)
    boundary = "qa2boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.tar"\r\n'
        "Content-Type: application/x-tar\r\n\r\n"
    ).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host.netloc}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + declared}\r\nX-CSRFToken: {cookies['csrftoken']}\r\n"
        f"Referer: {live_server.url}/\r\n"
        f"Cookie: {'; '.join(f'{k}={v}' for k, v in cookies.items())}\r\n\r\n"
    ).encode()
    with socket.create_connection((host.hostname, host.port), timeout=15) as sock:
        sock.sendall(request + head + b"\0" * sent)
        try:
            return sock.recv(65536)
        except TimeoutError:
            return b""


def test_a_refused_upload_is_answered_before_any_byte_is_stored(live_server, settings, ingest_root):
    """The session CSRF check reads the body before the view checks who asks: the gate in the
    upload handler says no at the file's first byte, so nothing is written and the server
    answers without waiting for the rest (a reducer, an EB with its data, an ingest running)."""
    eb, busy = fresh_eb(), make_eb(uid="uid://A002/X777/X7")
    ExecutionBlock.objects.filter(pk=busy.pk).update(data_status="present", data_name="raw/old.ms")
    csrf = "c" * 32
    users = {
        "reducer": PersonFactory(user__username="gate-reducer").user,
        "drm": PersonFactory(user__username="gate-drm", role=Person.Role.DRM).user,
    }
    cases = [
        ("reducer", reverse("executionblock-ingest-upload", args=[eb.pk]), b"403"),
        ("drm", reverse("executionblock-ingest-upload", args=[busy.pk]), b"409"),
        ("drm", reverse("calibration-eb-ingest-upload", args=[busy.pk]), b"302"),
        ("reducer", reverse("calibration-eb-ingest-upload", args=[eb.pk]), b"403"),
    ]
    for who, path, expected in cases:
        client = Client()
        client.force_login(users[who])
        cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf}
        answer = _raw_upload(live_server, path, cookies, declared=50 * 1024**2, sent=6 * 1024**2)
        assert answer.split(b"\r\n", 1)[0].split(b" ")[1:2] == [expected], (who, path, answer[:300])
        assert uploads_left() == [], (who, path)
    assert not DataIngest.objects.exists()
    # The declared size is checked at the same point (API and page alike).
    settings.INGEST_UPLOAD_MAX_BYTES = 100_000
    client = Client()
    client.force_login(users["drm"])
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf}
    answer = _raw_upload(
        live_server, reverse("executionblock-ingest-upload", args=[eb.pk]), cookies, 50 * 1024**2, 6 * 1024**2
    )
    assert b" 413 " in answer.split(b"\r\n", 1)[0] and uploads_left() == []


def test_an_ingest_the_queue_cannot_take_fails_at_once(
    drm_client, ingest_root, monkeypatch, celery_worker_process
):
    from celery import current_app
    from kombu.exceptions import OperationalError

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(current_app, "send_task", broker_down)
    eb = fresh_eb()
    source = _fake_ms(ingest_root / "q.ms")
    response = drm_client.post(
        reverse("executionblock-ingest", args=[eb.pk]), {"path": str(source)}, "application/json"
    )
    assert response.status_code == 202 and response.json()["status"] == "FAILED", response.content
    item = DataIngest.objects.get(execution_block=eb)
    assert item.status == "FAILED" and "could not be queued" in item.error
    assert_unchanged(eb)
    monkeypatch.undo()  # the EB is free again: a new request is accepted
    response = drm_client.post(
        reverse("executionblock-ingest", args=[eb.pk]), {"path": str(source)}, "application/json"
    )
    assert response.status_code == 202 and response.json()["status"] == "QUEUED"
    # The worker takes it (the fake MS fails its check): the test ends after the worker's last
    # write, never while it still reads the table the flush truncates (that deadlocked).
    assert wait_done(response.json()["id"]).status == "FAILED"


def test_the_reaper_fails_a_queued_ingest_no_worker_took_and_leaves_foreign_files(settings, tmp_path):
    eb = fresh_eb()
    old = timezone.now() - dt.timedelta(seconds=settings.INGEST_STALE_AFTER_SECONDS + 5)
    lost = DataIngest.objects.create(
        execution_block=eb, source_kind="upload", source="x.tgz", created_at=old, upload_name="lost.upload"
    )
    waiting = DataIngest.objects.create(
        execution_block=make_eb(uid="uid://A002/X996/X6"), source_kind="path", source="/x"
    )
    folder = ingest.upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "secret.part"
    secret.write_text("not ours")
    (folder / "lost.upload").write_bytes(b"x")
    (folder / "a-folder.upload").mkdir()
    (folder / "link.part").symlink_to(secret)
    (folder / "notes.txt").write_text("an operator's file")
    long_ago = time.time() - settings.INGEST_STALE_AFTER_SECONDS - 5
    for name in ("a-folder.upload", "notes.txt", "lost.upload"):
        os.utime(folder / name, (long_ago, long_ago))
    os.utime(folder / "link.part", (long_ago, long_ago), follow_symlinks=False)
    assert ingest.ingests_reap_stale() == [lost.pk]
    lost.refresh_from_db()
    assert lost.status == "FAILED" and "no worker took the ingest" in lost.error
    assert DataIngest.objects.get(pk=waiting.pk).status == "QUEUED"  # asked for just now
    assert uploads_left() == ["a-folder.upload", "link.part", "notes.txt"]  # only its own regular files
    assert secret.read_text() == "not ours"
    assert_unchanged(eb)


def test_a_queued_ingest_is_cancelled_through_the_api_and_the_page(drm_client, ingest_root):
    eb = fresh_eb()
    # Queued and never sent (a worker of another test could take a sent one).
    folder = ingest.upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "queued.upload").write_bytes(tar_bytes((member("x.ms/table.dat"), b"x")))
    item = DataIngest.objects.create(
        execution_block=eb, source_kind="upload", source="eb.tar", upload_name="queued.upload"
    )
    page = drm_client.get(reverse("calibration-ingest", args=[item.pk])).content.decode()
    assert 'id="ingest-cancel"' in page
    reducer = Client()
    reducer.force_login(PersonFactory(user__username="cancel-reducer").user)
    assert reducer.post(reverse("dataingest-cancel", args=[item.pk])).status_code == 403
    answer = drm_client.post(reverse("dataingest-cancel", args=[item.pk]))
    assert answer.status_code == 200, answer.content
    assert (
        answer.json()["status"] == "FAILED"
        and answer.json()["error"] == "cancelled by ingestdrm; nothing was changed"
    )
    assert uploads_left() == []  # the upload the worker will never read
    assert_unchanged(eb)
    again = drm_client.post(reverse("dataingest-cancel", args=[item.pk]))
    assert again.status_code == 409 and "already failed" in again.json()["detail"]
    page = drm_client.post(reverse("calibration-ingest-cancel", args=[item.pk]), follow=True).content.decode()
    assert "Not cancelled: ingest" in page and 'id="ingest-cancel"' not in page
    # One JSON for a row: the status endpoint answers what the API answers.
    status = drm_client.get(reverse("calibration-ingest-status", args=[item.pk])).json()
    assert status == drm_client.get(reverse("dataingest-detail", args=[item.pk])).json()
    assert status["status_display"] == "Failed"


@pytest.mark.casa
def test_the_check_is_sandboxed_and_its_clock_starts_when_the_copy_is_done(
    celery_worker_process, small_eb, monkeypatch
):
    """Real CASA, in this process. The check reads the copy in its staging folder: data outside
    it is not even visible in the sandbox. And its timeout counts from the go order, not from
    CASA's start (the copy of a large ASDM may take longer than the check's whole budget)."""
    from calibration import casa

    assert casa.sandbox_mode() == "bwrap", "this machine has bubblewrap: the check must use it"
    eb = fresh_eb()
    item = _copying_row(eb)
    staging = _staging(item)
    DataIngest.objects.filter(pk=item.pk).update(status="CHECKING")
    # Outside the staging folder (the test's simulated data): the sandbox does not show it.
    checker = ingest.CasaCheck(item, staging)
    summary = checker.result(small_eb.ms, "ms")
    assert "error" in summary and "antennas" not in summary, summary

    monkeypatch.setattr(ingest, "CHECK_TIMEOUT", 15)
    copy = shutil.copytree(small_eb.ms, staging / "data" / small_eb.ms.name)
    checker = ingest.CasaCheck(item, staging)
    time.sleep(20)  # "the copy": longer than the check's whole budget
    summary = checker.result(copy, "ms")
    assert summary["execblock_uids"] == [SIM_UID] and summary["antennas"], summary
    shutil.rmtree(staging)


@pytest.mark.casa
def test_a_running_ingest_is_cancelled_and_the_eb_stays_as_it_was(
    celery_worker_process, drm_client, ingest_root
):
    source = shutil.copy(_ngc5921_fits(), ingest_root / "NGC5921.fits")
    eb = make_eb(uid="uid://A002/Xsim02/X9")
    response = drm_client.post(
        reverse("executionblock-ingest", args=[eb.pk]), {"path": str(source)}, "application/json"
    )
    item_id = response.json()["id"]
    started = time.monotonic()
    while DataIngest.objects.get(pk=item_id).status not in ("COPYING", "CHECKING"):
        assert time.monotonic() - started < TIMEOUT
        time.sleep(0.05)
    answer = drm_client.post(reverse("dataingest-cancel", args=[item_id]))
    assert answer.status_code == 200, answer.content
    assert answer.json()["error"] == "cancelled by ingestdrm; nothing was changed"
    # The worker notices, stops CASA and removes its staging folder; the EB never gets the data.
    started = time.monotonic()
    while (eb_folder(eb) / "raw").exists() and any((eb_folder(eb) / "raw").iterdir()):
        assert time.monotonic() - started < TIMEOUT, raw_entries(eb)
        time.sleep(0.2)
    time.sleep(6)  # past a heartbeat: a worker that did not notice would publish by now
    item = DataIngest.objects.get(pk=item_id)
    assert item.status == "FAILED" and item.error == "cancelled by ingestdrm; nothing was changed"
    assert_unchanged(eb)
