"""The run's lifecycle and the supervisor's checks, without a worker: the transition table,
the guarded finish, event parsing, product paths, the worker's own files, the folder lock."""

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from django.utils import timezone

from calibration import engine, workerfiles
from calibration.incasa.events import MARKER
from calibration.models import Product, Run, RunStep
from tests.factories import MousFactory

S = Run.Status


@pytest.fixture
def make_run(db, tmp_path):
    def make(status: str = S.QUEUED, folder: Path | None = None) -> Run:
        folder = folder or tmp_path / "run-folder"
        folder.mkdir(parents=True, exist_ok=True)
        return Run.objects.create(mous=MousFactory(), folder=str(folder), status=status)

    return make


# --- the transition table ----------------------------------------------------------------
def test_the_table_has_no_way_out_of_a_final_state():
    assert {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.TIMED_OUT} == Run.TERMINAL
    assert set(Run.TRANSITIONS) == set(S.values)
    for final in Run.TERMINAL:
        assert all(not Run.may_move(final, new) for new in S.values)
    assert Run.may_move(S.QUEUED, S.RUNNING) and Run.may_move(S.RUNNING, S.RUNNING)
    assert Run.may_move(S.QUEUED, S.CANCELLED) and Run.may_move(S.RUNNING, S.TIMED_OUT)
    # A run that never ran cannot succeed or time out.
    assert not Run.may_move(S.QUEUED, S.SUCCEEDED) and not Run.may_move(S.QUEUED, S.TIMED_OUT)
    assert not Run.may_move(S.RUNNING, S.QUEUED)
    assert sorted(Run.sources_of(S.SUCCEEDED)) == [S.RUNNING]


def test_finish_ends_a_running_run_once(make_run):
    run = make_run(S.RUNNING)

    assert run.finish(S.SUCCEEDED) is True
    assert run.status == S.SUCCEEDED and run.finished_at is not None

    assert run.finish(S.FAILED, "late") is False
    run.refresh_from_db()
    assert run.status == S.SUCCEEDED and run.error == ""


def test_the_reapers_failed_is_not_overwritten_by_a_late_worker(make_run):
    run = make_run(S.RUNNING)
    worker_copy = Run.objects.get(pk=run.pk)  # what the worker holds in memory
    assert run.finish(S.FAILED, "worker lost (no heartbeat since 03:00:00)")

    assert worker_copy.status == S.RUNNING  # stale in memory ...
    assert worker_copy.finish(S.SUCCEEDED) is False  # ... but the database decides
    assert worker_copy.status == S.FAILED  # refreshed
    run.refresh_from_db()
    assert (run.status, run.error) == (S.FAILED, "worker lost (no heartbeat since 03:00:00)")


def test_finish_refuses_a_state_that_is_not_final_and_move_follows_the_table(make_run):
    run = make_run(S.QUEUED)
    with pytest.raises(ValueError, match="not a final state"):
        run.finish(S.RUNNING)
    assert run.move(S.SUCCEEDED) is False  # QUEUED -> SUCCEEDED is not in the table
    assert run.status == S.QUEUED
    assert run.move(S.RUNNING, attempts=1) is True
    assert (run.status, run.attempts) == (S.RUNNING, 1)


@pytest.mark.django_db(transaction=True)
def test_two_writers_finishing_at_once_one_wins(make_run):
    run = make_run(S.RUNNING)
    results: dict[str, bool] = {}

    def finish(status: str) -> None:
        from django.db import connection

        try:
            results[status] = Run.objects.get(pk=run.pk).finish(status, status)
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=(s,)) for s in (S.FAILED, S.CANCELLED, S.SUCCEEDED)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.refresh_from_db()
    assert sorted(results.values()) == [False, False, True]
    assert results[run.status] is True and run.error == run.status


# --- events ------------------------------------------------------------------------------
def line(event: dict) -> str:
    return MARKER + json.dumps(event) + "\n"


@pytest.mark.parametrize(
    "text",
    [
        "plain output\n",
        "QA2EVENT {}\n",
        MARKER + "{not json\n",
        MARKER + "[1, 2]\n",
        MARKER + '"step_end"\n',
        line({"event": "reboot", "nonce": "n0nce"}),
        line({"event": "step_end", "step": 0, "ok": False}),  # no nonce
        line({"event": "step_end", "step": 0, "ok": False, "nonce": "guess"}),
        line({"event": "step_end", "step": 0, "ok": False, "nonce": 12}),
        MARKER + "\n",
    ],
)
def test_anything_that_is_not_one_of_our_events_is_output(text):
    assert engine.parse_event(text, "n0nce") is None


def test_an_event_with_the_runs_nonce_parses_without_it():
    assert engine.parse_event(line({"event": "runner_end", "nonce": "n0nce"}), "n0nce") == {
        "event": "runner_end"
    }


@pytest.fixture
def follower(make_run, tmp_path):
    run = make_run(S.RUNNING)
    steps = [RunStep.objects.create(run=run, number=n, title=f"step {n}") for n in (0, 1)]
    output = (tmp_path / "out.txt").open("w")
    yield engine.Follower(run=run, steps={s.number: s for s in steps}, output=output, nonce="n0nce")
    output.close()


@pytest.mark.parametrize(
    "event",
    [
        {"event": "step_start", "step": 7},
        {"event": "step_start", "step": "0"},
        {"event": "step_end", "step": 0, "ok": True},  # step 0 is not running
        {"event": "products", "step": 0, "items": "x"},
        {"event": "diagnostics", "step": 0, "items": {"a": 1}},
        {"event": "step_start"},
    ],
)
def test_a_malformed_or_out_of_place_event_is_output_never_a_crash(follower, event):
    engine._handle_event_line(line({**event, "nonce": "n0nce"}), follower, timeout=60)

    assert follower.current is None and not follower.finished_cleanly
    assert set(follower.run.steps.values_list("status", flat=True)) == {RunStep.Status.PENDING}
    follower.output.flush()
    assert '"nonce": "n0nce"' in Path(follower.output.name).read_text()


def test_a_step_end_for_another_step_than_the_running_one_is_refused(follower):
    engine._handle_event_line(line({"event": "step_start", "step": 0, "nonce": "n0nce"}), follower, 60)
    end = {"ok": False, "error": "x", "traceback": "", "skipped_helpers": [], "casa_tasks": [], "severe": []}
    engine._handle_event_line(line({"event": "step_end", "step": 1, **end, "nonce": "n0nce"}), follower, 60)
    engine._handle_event_line(line({"event": "runner_end", "nonce": "n0nce"}), follower, 60)

    assert follower.current.number == 0 and not follower.finished_cleanly
    step0 = RunStep.objects.get(run=follower.run, number=0)
    assert step0.status == RunStep.Status.RUNNING
    assert any("not the running step" in w for w in step0.warnings)


# --- product paths -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "relpath",
    [
        "../../../../etc/passwd",
        "/etc/passwd",
        "sub/../../x",
        "./made.txt",
        "sub//made.txt",
        "",
        None,
        17,
        "a\x00b",
        "missing.txt",
        "link-out",
        "link-in",
        "linked-dir/made.txt",
        "fifo",
    ],
)
def test_a_product_path_outside_the_folder_or_through_a_link_is_refused(tmp_path, relpath):
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "made.txt").write_text("x")
    (folder / "sub" / "made.txt").write_text("x")
    (folder / "link-out").symlink_to("/etc/passwd")
    (folder / "link-in").symlink_to(folder / "made.txt")
    (folder / "linked-dir").symlink_to(folder / "sub")
    os.mkfifo(folder / "fifo")

    assert engine.relpath_problem(folder, relpath) is not None


def test_plain_product_paths_are_accepted(tmp_path):
    (tmp_path / "cal.ms" / "sub").mkdir(parents=True)
    (tmp_path / "cal.ms" / "table.dat").write_text("x")
    for relpath in ("cal.ms", "cal.ms/table.dat", "cal.ms/sub"):
        assert engine.relpath_problem(tmp_path, relpath) is None


def test_forged_products_are_not_recorded_and_warn(make_run):
    run = make_run(S.RUNNING)
    (run.folder_path / "fine.txt").write_text("x")
    warnings: list[str] = []
    items = [
        {"relpath": "../../../../etc/passwd", "kind": "txt", "viscal": "", "size": 1},
        {"relpath": "fine.txt", "kind": "nonsense", "viscal": 5, "size": -3},
        "not an item",
    ]

    engine.record_products(run, None, items, warn=warnings.append)

    assert list(Product.objects.filter(run=run).values_list("relpath", "kind", "viscal", "size")) == [
        ("fine.txt", Product.Kind.OTHER, "", 0)
    ]
    assert len(warnings) == 2 and "../../../../etc/passwd" in warnings[0]


# --- the worker's own files --------------------------------------------------------------
def test_the_worker_never_writes_through_a_planted_link_fifo_or_hard_link(tmp_path):
    folder, outside = tmp_path / "run", tmp_path / "outside.txt"
    folder.mkdir()
    outside.write_text("precious")
    (folder / "inside.ms").write_text("table data")
    (folder / "run9.output.txt").symlink_to(outside)
    os.link(folder / "inside.ms", folder / "run10.output.txt")
    os.mkfifo(folder / "run11.output.txt")
    (folder / "script.py").symlink_to(outside)

    for name in ("run9.output.txt", "run10.output.txt", "run11.output.txt"):
        with workerfiles.open_text(folder, name) as handle:
            handle.write("=== log\n")
    workerfiles.write_bytes(folder, "script.py", b"print(1)\n")

    assert outside.read_text() == "precious"
    assert (folder / "inside.ms").read_text() == "table data"
    for name in ("run9.output.txt", "run10.output.txt", "run11.output.txt", "script.py"):
        st = os.lstat(folder / name)
        assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1, name
    assert (folder / "run9.output.txt").read_text() == "=== log\n"


def test_the_worker_appends_to_its_own_log_and_refuses_a_folder_in_its_place(tmp_path):
    with workerfiles.open_text(tmp_path, "run1.output.txt") as handle:
        handle.write("one\n")
    with workerfiles.open_text(tmp_path, "run1.output.txt") as handle:
        handle.write("two\n")
    assert (tmp_path / "run1.output.txt").read_text() == "one\ntwo\n"
    (tmp_path / "run2.output.txt").mkdir()
    with pytest.raises(workerfiles.WorkerFileRefused, match="is a folder"):
        workerfiles.open_text(tmp_path, "run2.output.txt")
    with pytest.raises(ValueError):
        workerfiles.open_text(tmp_path, "../escape.txt")


# --- one run per folder ------------------------------------------------------------------
def test_a_second_run_of_a_folder_waits_for_the_lock_then_is_refused_clearly(make_run, settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    first, second = make_run(S.RUNNING), make_run(S.RUNNING)
    assert first.folder == second.folder
    lock = engine.folder_lock_path(first.folder_path)
    assert not lock.is_relative_to(first.folder_path)

    with (
        engine.folder_lock(first),
        pytest.raises(engine.FolderBusy, match=f"still in use by run {first.pk}"),
        engine.folder_lock(second, wait=1.0),
    ):
        pytest.fail("two holders of one folder")
    with engine.folder_lock(second, wait=1.0):
        pass  # free again once the first run let go


# --- queues ------------------------------------------------------------------------------
def test_reapers_run_on_default_and_casa_jobs_on_the_casa_queue(settings):
    from qa2portal.celery import app

    def queue(name: str) -> str:
        return app.amqp.router.route({}, name)["queue"].name

    for task in ("reap_stale_runs", "reap_stale_generations", "reap_stale_ingests"):
        assert queue(f"calibration.tasks.{task}") == "default"
    for task in ("run_execute", "script_generate", "ingest_execute"):
        assert queue(f"calibration.tasks.{task}") == settings.CASA_QUEUE
    assert settings.CELERY_TASK_SOFT_TIME_LIMIT > settings.CASA_RUN_WALLCLOCK_LIMIT
    assert settings.CELERY_VISIBILITY_TIMEOUT > settings.CASA_RUN_WALLCLOCK_LIMIT


# --- script generation: the same heartbeat and reaper ------------------------------------
def test_the_reaper_fails_a_generation_whose_worker_went_away_and_a_late_worker_keeps_it_failed(db):
    from calibration import script_generation
    from calibration.models import ScriptGeneration
    from tests.factories import ExecutionBlockFactory

    G = ScriptGeneration.Status
    eb = ExecutionBlockFactory()
    old = timezone.now() - timezone.timedelta(hours=1)
    lost = ScriptGeneration.objects.create(execution_block=eb, status=G.RUNNING, heartbeat_at=old)
    alive = ScriptGeneration.objects.create(execution_block=eb, status=G.RUNNING, heartbeat_at=timezone.now())
    queued = ScriptGeneration.objects.create(execution_block=eb)

    assert script_generation.generations_reap_stale() == [lost.pk]

    lost.refresh_from_db()
    assert lost.status == G.FAILED and lost.error.startswith("worker lost")
    assert ScriptGeneration.objects.get(pk=alive.pk).status == G.RUNNING
    assert ScriptGeneration.objects.get(pk=queued.pk).status == G.QUEUED
    # The late worker: neither its DONE nor a new run of the task changes the reaper's answer.
    assert script_generation._generation_finish(lost, G.DONE) is False
    assert script_generation.script_generate(generation_id=lost.pk).status == G.FAILED
    lost.refresh_from_db()
    assert lost.status == G.FAILED and lost.version is None
