"""Signal receivers of the assignments app (connected in AssignmentsConfig.ready)."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from assignments.events import mous_state_changed
from assignments.intake import investigators_link_account
from assignments.jira.outbox import outbox_enqueue_for_state_change


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="assignments-link-investigators")
def link_investigators(sender, instance, created: bool, raw: bool, update_fields=None, **kwargs) -> None:
    """An account created after its project, or whose e-mail changed, becomes the investigator's.

    Saves that cannot change the address (e.g. last_login at sign-in) cost nothing.
    """
    if raw or (update_fields is not None and "email" not in update_fields):
        return
    investigators_link_account(instance)


@receiver(mous_state_changed, dispatch_uid="assignments-jira-state-comment")
def comment_state_change_on_ticket(sender, change, **kwargs) -> None:
    """Queue the ticket comment for a lifecycle move, in the move's own transaction."""
    outbox_enqueue_for_state_change(change)
