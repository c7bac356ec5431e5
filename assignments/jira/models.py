"""JIRA rows: every accepted webhook delivery, the comment outbox, JIRA account links."""

from django.db import models
from django.utils import timezone


class WebhookDelivery(models.Model):
    """One signed delivery from JIRA, stored as received (headers, raw body) with its outcome.

    Unsigned or oversized requests are never stored: writing rows for anonymous traffic would
    let anyone fill the database. They leave one security log line instead.
    """

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted (processing queued)"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected (signed but malformed)"

    # X-Atlassian-Webhook-Identifier: unchanged across JIRA's retries, so it is the dedupe key.
    identifier = models.CharField(max_length=128, unique=True)
    event = models.CharField(max_length=64, blank=True)
    issue_key = models.CharField(max_length=32, blank=True, db_index=True)
    headers = models.JSONField(default=dict)
    body = models.TextField()
    # sha256 of the raw body. A replay of a signed body under a new identifier is still the
    # same body (JIRA puts a millisecond timestamp in every event, so two real events never
    # share one): unique, so it is applied once for as long as the row is kept (rows are never
    # purged). Empty only for rows from before this column whose body repeated an older one.
    body_sha256 = models.CharField(max_length=64, blank=True, default="")
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACCEPTED)
    result = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Processing attempts (replays count).")
    duplicates = models.PositiveIntegerField(default=0, help_text="Retries of this delivery that JIRA sent.")
    last_duplicate_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "received_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["body_sha256"],
                condition=~models.Q(body_sha256=""),
                name="webhookdelivery_body_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event or '?'} {self.issue_key} ({self.identifier})"


class OutboxComment(models.Model):
    """A ticket comment waiting to go to JIRA, written in the transaction of the event it reports.

    A worker sends it (POST /rest/api/2/issue/{key}/comment) with retry and backoff; the row
    is locked while it is being sent so two senders never post it twice.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        FAILING = "failing", "Failing (will retry)"
        SENT = "sent", "Sent"
        DEAD = "dead", "Failed (not retried)"

    OPEN = frozenset({Status.PENDING, Status.FAILING})

    mous = models.ForeignKey("assignments.Mous", null=True, on_delete=models.SET_NULL, related_name="+")
    issue_key = models.CharField(max_length=32)
    kind = models.CharField(max_length=32, help_text="What happened: assigned, blocked, qa2_decided, ...")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    jira_comment_id = models.CharField(max_length=32, blank=True)
    # Files to attach after the comment ([{"name", "content"}], text: the scripts), and the names
    # JIRA has taken: a retry posts only the rest.
    attachments = models.JSONField(default=list, blank=True)
    attachments_sent = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.issue_key}: {self.kind} ({self.status})"

    @property
    def marker(self) -> str:
        """Last line of the comment: finds it on the ticket after an unknown outcome, and keeps
        our own comments from being read back as commands."""
        return f"[qa2portal outbox #{self.pk}]"


class JiraAccount(models.Model):
    """Links a JIRA account to a qa2portal person (JIRA Cloud often hides e-mail addresses)."""

    account_id = models.CharField(max_length=128, unique=True, help_text="JIRA accountId or user name.")
    person = models.ForeignKey("assignments.Person", on_delete=models.CASCADE, related_name="jira_accounts")

    class Meta:
        verbose_name = "JIRA account"

    def __str__(self) -> str:
        return f"{self.account_id} -> {self.person}"


__all__ = ["JiraAccount", "OutboxComment", "WebhookDelivery"]
