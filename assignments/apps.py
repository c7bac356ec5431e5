from django.apps import AppConfig


class AssignmentsConfig(AppConfig):
    name = "assignments"
    verbose_name = "Assignments"

    def ready(self) -> None:
        from assignments import signals  # noqa: F401  (links investigators to accounts by e-mail)
