"""Who gets what on every assignments route (pages and /api/). Read by test_permission_matrix.py."""

from tests.assignments.matrix import Probe, api, by_pk, everyone_reads, manager_only, page


def _version(world, mous) -> dict:
    mous.refresh_from_db()
    return {"version": mous.version}


def _new_project(world, mous) -> dict:
    return {"code": "2024.1.00001.S", "title": "matrix", "pi_name": "P. I.", "pi_email": "pi@example.org"}


def _project(mous) -> dict:
    return {"pk": mous.project.pk}


def _new_mous_page(world, mous) -> dict:
    return {**_new_mous(world, mous), "goal": "continuum", "eb_uids": "uid://A002/X999/X1"}


def _new_mous(world, mous) -> dict:
    return {
        "project": mous.project.code,
        "uid": "uid://A001/X999/X1",
        "sb_name": "M_a_06_TE",
        "array": "TE",
        "band": 6,
    }


def _new_eb(world, mous) -> dict:
    return {"mous": mous.pk, "uid": "uid://A002/X999/X1"}


def _eb(mous) -> dict:
    return {"pk": mous.execution_blocks.first().pk}


def _assignment(mous) -> dict:
    return {"pk": mous.assignments.first().pk}


def _audit(mous) -> dict:
    return {"pk": mous.state_changes.first().pk}


def _nothing(mous) -> dict:
    return {"pk": 0}


# The session never decides here (HMAC does); tests/assignments/jira covers signed deliveries.
# Without JIRA_WEBHOOK_SECRET the feature is off and the hook answers 404 to everyone.
PROBE_WEBHOOK = Probe(anon=404, other=404, own=404, drm=404, method="post", data=lambda w, m: {})

ROUTES = {
    # --- REST API (/api/) ---
    "api-token": [api(400, other=400, own=400, drm=400, method="post")],  # no credentials sent
    "project-list": [everyone_reads(), manager_only(201, method="post", data=_new_project)],
    "project-detail": [everyone_reads(kwargs=lambda m: {"pk": m.project.pk})],
    "mous-list": [everyone_reads(), manager_only(201, method="post", data=_new_mous)],
    "mous-detail": [
        everyone_reads(kwargs=by_pk),
        manager_only(200, method="patch", kwargs=by_pk, data=lambda w, m: {"notes": "x", **_version(w, m)}),
    ],
    "mous-transition": [
        api(
            other=403,
            own=200,
            drm=200,
            method="post",
            kwargs=by_pk,
            data=lambda w, m: {"to": "CALIBRATING", **_version(w, m)},
        ),
        # ASSIGNED -> NEW is a DRM move (refused to the reducer even on their own MOUS); the
        # DRM gets 400 because NEW needs the reducer unassigned first.
        api(
            other=403,
            own=403,
            drm=400,
            method="post",
            kwargs=by_pk,
            data=lambda w, m: {"to": "NEW", **_version(w, m)},
        ),
    ],
    "mous-assign": [
        manager_only(200, method="post", kwargs=by_pk, data=lambda w, m: {"reducer": w.drm.user.username})
    ],
    "mous-unassign": [manager_only(200, method="post", kwargs=by_pk, data=lambda w, m: {})],
    "mous-bulk-assign": [
        manager_only(
            200, method="post", data=lambda w, m: {"mous": [w.new.pk], "reducer": w.reducer.user.username}
        )
    ],
    "mous-history": [everyone_reads(kwargs=by_pk)],
    "executionblock-list": [everyone_reads(), manager_only(201, method="post", data=_new_eb)],
    "executionblock-detail": [everyone_reads(kwargs=_eb)],
    "assignment-list": [everyone_reads()],
    "assignment-detail": [everyone_reads(kwargs=_assignment)],
    "statechange-list": [everyone_reads()],
    "statechange-detail": [everyone_reads(kwargs=_audit)],
    # --- pages ---
    "assignments-whiteboard": [everyone_reads(302)],
    "assignments-my-work": [everyone_reads(302)],
    "assignments-mous": [everyone_reads(302, kwargs=by_pk)],
    "assignments-mous-transition": [
        page(
            other=403, own=302, drm=302, method="post", kwargs=by_pk, data=lambda w, m: {"to": "CALIBRATING"}
        ),
        page(other=403, own=409, drm=409, method="post", kwargs=by_pk, data=lambda w, m: {"to": "DELIVERED"}),
    ],
    "assignments-mous-assign": [
        manager_only(
            302, anon=302, method="post", kwargs=by_pk, data=lambda w, m: {"reducer": w.other_reducer.pk}
        ),
    ],
    "assignments-mous-unassign": [
        manager_only(302, anon=302, method="post", kwargs=by_pk, data=lambda w, m: {})
    ],
    "assignments-mous-edit": [manager_only(200, anon=302, kwargs=by_pk)],
    # --- JIRA integration (assignments/jira): objects addressed by pk 0 (none exist here) ---
    "assignments-jira-webhook": [PROBE_WEBHOOK],
    "assignments-jira": [manager_only(200, anon=302)],
    "assignments-jira-delivery": [manager_only(404, anon=302, kwargs=_nothing)],
    "assignments-jira-replay": [
        manager_only(404, anon=302, method="post", kwargs=_nothing, data=lambda w, m: {})
    ],
    "assignments-jira-outbox-send": [
        manager_only(404, anon=302, method="post", kwargs=_nothing, data=lambda w, m: {})
    ],
    # --- intake pages (DRMs and data analysts register; tests/assignments/test_intake_pages.py
    # covers the data analyst, who is no persona here) ---
    "intake-project-new": [
        manager_only(200, anon=302),
        manager_only(302, anon=302, method="post", data=_new_project),
    ],
    "intake-project": [everyone_reads(302, kwargs=_project)],
    "intake-investigator-add": [
        manager_only(
            302,
            anon=302,
            method="post",
            kwargs=_project,
            data=lambda w, m: {"name": "C. O. I.", "email": "coi@example.org", "role": "coi"},
        )
    ],
    "intake-mous-new": [
        manager_only(200, anon=302),
        manager_only(302, anon=302, method="post", data=_new_mous_page),
    ],
    "intake-eb-new": [
        manager_only(200, anon=302, kwargs=by_pk),
        manager_only(
            302, anon=302, method="post", kwargs=by_pk, data=lambda w, m: {"uid": "uid://A002/X999/X2"}
        ),
    ],
    "assignments-bulk-assign": [
        manager_only(
            302, anon=302, method="post", data=lambda w, m: {"mous": [w.new.pk], "reducer": w.reducer.pk}
        )
    ],
}
