from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models


class Person(models.Model):
    """A qa2portal user's role in the QA2 process (one per Django user)."""

    class Role(models.TextChoices):
        DRM = "drm", "Data reduction manager"
        DEPUTY_DRM = "deputy_drm", "Deputy DRM"
        REDUCER = "reducer", "Data reducer (staff)"
        DATA_ANALYST = "data_analyst", "Data analyst"

    MANAGER_ROLES = frozenset({Role.DRM, Role.DEPUTY_DRM})

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="person")
    role = models.CharField(max_length=16, choices=Role.choices)
    initials = models.CharField(
        max_length=4,
        validators=[RegexValidator(r"^[A-Z]{2,4}$", "Initials are 2-4 capital letters, e.g. 'JM'.")],
        help_text="Marks the reducer's edits in scripts, as the seeds ask.",
    )

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_role_display()})"

    @property
    def is_manager(self) -> bool:
        return self.role in self.MANAGER_ROLES
