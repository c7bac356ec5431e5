"""Webhook in: signature, size limit, dedupe, and what a delivery does to the MOUS."""

import json
import logging

import pytest

from assignments.jira.inbound import delivery_process
from assignments.models import Assignment, ExecutionBlock, Mous, MousState, OutboxComment, WebhookDelivery
from tests.assignments.jira.conftest import SECRET
from tests.assignments.jira.payloads import (
    adf,
    assignee_item,
    comment_event,
    issue,
    issue_event,
    jira_user,
    status_item,
)

pytestmark = pytest.mark.django_db


def _accept(post_signed, payload, django_capture_on_commit_callbacks, **kwargs) -> WebhookDelivery:
    """Post like JIRA, check processing was queued after commit, then process in this process."""
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_signed(payload, **kwargs)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    assert len(callbacks) == 1  # the Celery task is enqueued only once the row is committed
    return delivery_process(delivery_id=response.json()["delivery"])


def _scops_issue(key="SCOPS-1234", **kwargs):
    return issue(
        key, summary=kwargs.pop("summary", "2019.1.00100.S uid://A001/X100/X10 NGC253_a_06_TE"), **kwargs
    )


def test_bad_signature_answers_401_and_writes_only_a_security_log_line(jira_on, post_signed, people, caplog):
    payload = issue_event(
        "jira:issue_updated", _scops_issue(), user=people["drm_jira"], items=[status_item("To Do", "Blocked")]
    )
    counts = (WebhookDelivery.objects.count(), Mous.objects.count(), OutboxComment.objects.count())

    with caplog.at_level(logging.WARNING, logger="qa2portal.security"):
        wrong_secret = post_signed(payload, secret="not-the-secret")
        sha1 = post_signed(payload, headers={"X-Hub-Signature": "sha1=" + "0" * 40})
        unsigned = post_signed(payload, headers={"X-Hub-Signature": ""})

    assert [r.status_code for r in (wrong_secret, sha1, unsigned)] == [401, 401, 401]
    assert (WebhookDelivery.objects.count(), Mous.objects.count(), OutboxComment.objects.count()) == counts
    security = [r for r in caplog.records if r.name == "qa2portal.security"]
    assert len(security) == 3 and all("bad or missing signature" in r.getMessage() for r in security)


def test_tampered_body_with_a_valid_signature_for_another_body_is_refused(jira_on, client, people):
    from tests.assignments.jira.payloads import signed

    body, headers = signed({"webhookEvent": "jira:issue_updated"}, secret=SECRET)
    tampered = body.replace(b"updated", b"created")
    response = client.post(
        "/api/hooks/jira/", data=tampered, content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"},
    )  # fmt: skip
    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_body_over_the_limit_answers_413_and_stores_nothing(jira_on, settings, post_signed, people, caplog):
    settings.JIRA_WEBHOOK_MAX_BYTES = 2048
    payload = issue_event("jira:issue_updated", _scops_issue(description="x" * 4000), user=people["drm_jira"])

    with caplog.at_level(logging.WARNING, logger="qa2portal.security"):
        response = post_signed(payload)

    assert response.status_code == 413
    assert not WebhookDelivery.objects.exists()
    assert any("over 2048 bytes" in r.getMessage() for r in caplog.records)


def test_webhook_is_off_without_a_secret(settings, post_signed, db):
    settings.JIRA_WEBHOOK_SECRET = ""
    assert post_signed({"webhookEvent": "jira:issue_updated"}).status_code == 404
    assert not WebhookDelivery.objects.exists()


def test_a_retry_with_the_same_identifier_answers_200_and_has_no_second_effect(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    mous = people["mous"]
    Mous.objects.filter(pk=mous.pk).update(state=MousState.CALIBRATING, assignee=people["reducer"])
    payload = issue_event(
        "jira:issue_updated",
        _scops_issue(),
        user=people["drm_jira"],
        items=[status_item("In Progress", "Blocked")],
    )
    first = _accept(post_signed, payload, django_capture_on_commit_callbacks, identifier="c0ffee-1")
    assert first.status == WebhookDelivery.Status.PROCESSED, first.result

    with django_capture_on_commit_callbacks() as callbacks:
        retry = post_signed(payload, identifier="c0ffee-1", headers={"X-Atlassian-Webhook-Retry": "1"})

    assert retry.status_code == 200 and retry.json()["status"] == "duplicate"
    assert callbacks == []  # nothing queued for the retry
    assert WebhookDelivery.objects.count() == 1
    assert WebhookDelivery.objects.get().duplicates == 1
    assert delivery_process(delivery_id=first.pk) is None  # a redelivered task does not apply it again
    assert mous.state_changes.filter(new_state=MousState.BLOCKED).count() == 1
    assert OutboxComment.objects.filter(kind="blocked").count() == 1


def test_signed_but_malformed_json_is_stored_as_rejected_with_400(jira_on, post_signed, db):
    response = post_signed(b'{"webhookEvent": "jira:issue_updated", ')
    assert response.status_code == 400
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.REJECTED
    assert "malformed JSON" in delivery.result


def test_issue_created_creates_the_mous_with_its_project_and_ebs(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    ticket = issue(
        "SCOPS-2001",
        summary="2021.1.00456.S uid://A001/X15a2/X7f3 Cen_A_a_07_TM1",
        description=(
            "Project: 2021.1.00456.S\nSB: CenA_a_07_TE\n"
            "EBs:\n* uid://A002/Xf1a2b3/X4c5d\n* uid://A002/Xf1a2b3/X6e7f\n"
        ),
    )
    delivery = _accept(
        post_signed, issue_event("jira:issue_created", ticket, user=people["drm_jira"], items=[]),
        django_capture_on_commit_callbacks,
    )  # fmt: skip

    assert delivery.status == WebhookDelivery.Status.PROCESSED, delivery.result
    mous = Mous.objects.get(uid="uid://A001/X15a2/X7f3")
    assert (mous.jira_key, mous.project.code, mous.sb_name, mous.band, mous.array) == (
        "SCOPS-2001", "2021.1.00456.S", "CenA_a_07_TE", 7, "TE",
    )  # fmt: skip
    assert sorted(ExecutionBlock.objects.filter(mous=mous).values_list("uid", flat=True)) == [
        "uid://A002/Xf1a2b3/X4c5d", "uid://A002/Xf1a2b3/X6e7f",
    ]  # fmt: skip


def test_custom_fields_from_the_field_mapping_win_over_the_text(
    jira_on, settings, post_signed, people, django_capture_on_commit_callbacks
):
    settings.JIRA_FIELD_MAP = {**settings.JIRA_FIELD_MAP, "mous_uid": "customfield_10401",
                               "sb_name": "customfield_10402", "band": "customfield_10403"}  # fmt: skip
    ticket = issue(
        "SCOPS-2002", summary="Data reduction 2022.1.00012.S", description="no uids here",
        extra_fields={"customfield_10401": "uid://A001/X2b0/X9", "customfield_10402": "Orion_b_03_7M",
                      "customfield_10403": {"value": "3", "id": "20003"}},
    )  # fmt: skip
    delivery = _accept(
        post_signed,
        issue_event("jira:issue_created", ticket, user=people["drm_jira"]),
        django_capture_on_commit_callbacks,
    )

    assert delivery.status == WebhookDelivery.Status.PROCESSED, delivery.result
    mous = Mous.objects.get(jira_key="SCOPS-2002")
    assert (mous.uid, mous.sb_name, mous.band, mous.array) == ("uid://A001/X2b0/X9", "Orion_b_03_7M", 3, "7M")


def test_a_status_change_in_the_changelog_moves_the_mous_and_comments_back(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    mous = people["mous"]
    Mous.objects.filter(pk=mous.pk).update(state=MousState.CALIBRATING, assignee=people["reducer"])
    payload = issue_event(
        "jira:issue_updated", _scops_issue(status="Imaging"), user=people["reducer_jira"],
        items=[status_item("In Progress", "Imaging")], type_name="issue_generic",
    )  # fmt: skip

    delivery = _accept(post_signed, payload, django_capture_on_commit_callbacks)

    mous.refresh_from_db()
    assert mous.state == MousState.IMAGING, delivery.result
    change = mous.state_changes.get(new_state=MousState.IMAGING)
    assert change.changed_by == people["reducer"].user  # the JIRA actor, matched by e-mail
    assert "In Progress -> Imaging" in change.note


def test_ready_for_review_from_jira_needs_the_checklist_and_the_refusal_is_commented(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    """JIRA cannot skip the final checklist: nothing is calibrated, so the move is refused and
    the ticket is told what is missing."""
    mous = people["mous"]
    Mous.objects.filter(pk=mous.pk).update(state=MousState.CALIBRATING, assignee=people["reducer"])
    payload = issue_event(
        "jira:issue_updated", _scops_issue(status="Ready for Review"), user=people["reducer_jira"],
        items=[status_item("In Progress", "Ready for Review")], type_name="issue_generic",
    )  # fmt: skip

    delivery = _accept(post_signed, payload, django_capture_on_commit_callbacks)

    mous.refresh_from_db()
    assert mous.state == MousState.CALIBRATING
    assert "refused READY_FOR_REVIEW: not ready for READY_FOR_REVIEW" in delivery.result
    refusal = OutboxComment.objects.get(mous=mous, kind="refused")
    assert "checklist item(s) missing" in refusal.body and "README" in refusal.body


def test_an_illegal_status_change_is_refused_and_the_refusal_commented(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    mous = people["mous"]  # NEW: cannot be delivered
    payload = issue_event(
        "jira:issue_updated",
        _scops_issue(),
        user=people["drm_jira"],
        items=[status_item("To Do", "Delivered")],
    )

    delivery = _accept(post_signed, payload, django_capture_on_commit_callbacks)

    mous.refresh_from_db()
    assert mous.state == MousState.NEW
    assert "refused DELIVERED: cannot go from NEW to DELIVERED" in delivery.result
    refusal = OutboxComment.objects.get(mous=mous, kind="refused")
    assert "cannot go from NEW to DELIVERED" in refusal.body


def test_an_assignee_who_is_the_pi_is_refused_and_the_refusal_commented(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    mous = people["mous"]
    ticket = _scops_issue(assignee=people["pi_jira"])
    payload = issue_event(
        "jira:issue_updated", ticket, user=people["drm_jira"], items=[assignee_item(None, people["pi_jira"])],
        type_name="issue_assigned",
    )  # fmt: skip

    delivery = _accept(post_signed, payload, django_capture_on_commit_callbacks)

    assert delivery.status == WebhookDelivery.Status.PROCESSED
    assert "assignment refused: pipi cannot reduce" in delivery.result
    mous.refresh_from_db()
    assert mous.assignee is None and mous.state == MousState.NEW
    assert not Assignment.objects.filter(mous=mous).exists()
    refusal = OutboxComment.objects.get(mous=mous)
    assert refusal.kind == "refused" and "PI of project" in refusal.body


def test_an_assignee_change_assigns_the_reducer_and_comments(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    mous = people["mous"]
    payload = issue_event(
        "jira:issue_updated", _scops_issue(assignee=people["reducer_jira"]), user=people["drm_jira"],
        items=[assignee_item(None, people["reducer_jira"])], type_name="issue_assigned",
    )  # fmt: skip

    delivery = _accept(post_signed, payload, django_capture_on_commit_callbacks)

    mous.refresh_from_db()
    assert (mous.assignee, mous.state) == (people["reducer"], MousState.ASSIGNED), delivery.result
    assert Assignment.objects.get(mous=mous).assigned_by == people["drm"].user
    assert list(OutboxComment.objects.filter(mous=mous).values_list("kind", flat=True)) == ["assigned"]


def test_a_drm_command_in_an_adf_comment_blocks_the_mous(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    mous = people["mous"]
    Mous.objects.filter(pk=mous.pk).update(state=MousState.CALIBRATING, assignee=people["reducer"])
    body = adf("Looked at the Tsys tables.", "qa2portal: block Tsys spikes on DV05, waiting for the AoD")
    payload = comment_event(_scops_issue(), author=people["drm_jira"], body=body)

    delivery = _accept(post_signed, payload, django_capture_on_commit_callbacks)

    mous.refresh_from_db()
    assert mous.state == MousState.BLOCKED, delivery.result
    assert mous.blocked_reason == "Tsys spikes on DV05, waiting for the AoD"
    assert OutboxComment.objects.get(mous=mous).kind == "blocked"


def test_a_drm_command_in_a_wiki_comment_assigns(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    mous = people["mous"]
    payload = comment_event(
        _scops_issue(), author=people["drm_jira"], body="Please take this one.\r\nqa2portal: assign ared\r\n"
    )

    delivery = _accept(post_signed, payload, django_capture_on_commit_callbacks)

    mous.refresh_from_db()
    assert mous.assignee == people["reducer"], delivery.result


def test_commands_from_someone_who_is_not_a_drm_are_ignored(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    payload = comment_event(_scops_issue(), author=people["reducer_jira"], body="qa2portal: assign ared")

    delivery = _accept(post_signed, payload, django_capture_on_commit_callbacks)

    assert delivery.status == WebhookDelivery.Status.IGNORED
    assert "commands are for DRMs" in delivery.result
    assert Mous.objects.get(pk=people["mous"].pk).assignee is None


def test_our_own_comments_coming_back_are_not_read_as_commands(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    body = (
        "*qa2portal*: MOUS uid://A001/X1/X2 blocked by jdrm.\nqa2portal: block loop\n\n[qa2portal outbox #7]"
    )
    delivery = _accept(
        post_signed,
        comment_event(_scops_issue(), author=people["drm_jira"], body=body),
        django_capture_on_commit_callbacks,
    )
    assert delivery.status == WebhookDelivery.Status.IGNORED
    assert Mous.objects.get(pk=people["mous"].pk).state == MousState.NEW


def test_unknown_events_are_stored_and_ignored(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    payload = {
        "timestamp": 1763625600000,
        "webhookEvent": "worklog_created",
        "worklog": {"id": "1", "timeSpent": "1h"},
    }
    delivery = _accept(post_signed, payload, django_capture_on_commit_callbacks)
    assert delivery.status == WebhookDelivery.Status.IGNORED
    assert "worklog_created is not handled" in delivery.result
    assert json.loads(delivery.body) == payload
    assert delivery.headers["X-Atlassian-Webhook-Flow"] == "Primary"


def test_a_ticket_outside_the_data_reduction_project_is_ignored(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    ticket = issue("HELP-77", summary="2019.1.00100.S uid://A001/X900/X90 please help")
    delivery = _accept(
        post_signed,
        issue_event("jira:issue_created", ticket, user=people["drm_jira"]),
        django_capture_on_commit_callbacks,
    )
    assert delivery.status == WebhookDelivery.Status.IGNORED
    assert not Mous.objects.filter(uid="uid://A001/X900/X90").exists()


def test_a_ticket_that_cannot_make_a_mous_fails_with_the_reason_and_changes_nothing(
    jira_on, post_signed, people, django_capture_on_commit_callbacks
):
    ticket = issue("SCOPS-3003", summary="2019.1.00100.S uid://A001/X901/X91", description="no SB name")
    delivery = _accept(
        post_signed,
        issue_event("jira:issue_created", ticket, user=jira_user("x")),
        django_capture_on_commit_callbacks,
    )
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert "missing SB name, band, array" in delivery.result
    assert not Mous.objects.filter(uid="uid://A001/X901/X91").exists()
