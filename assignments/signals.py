"""Signal receivers of the assignments app (connected in AssignmentsConfig.ready)."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from assignments.intake import investigators_link_account


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="assignments-link-investigators")
def link_investigators(sender, instance, created: bool, raw: bool, update_fields=None, **kwargs) -> None:
    """An account created after its project, or whose e-mail changed, becomes the investigator's.

    Saves that cannot change the address (e.g. last_login at sign-in) cost nothing.
    """
    if raw or (update_fields is not None and "email" not in update_fields):
        return
    investigators_link_account(instance)
