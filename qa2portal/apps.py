from django.apps import AppConfig


class Qa2portalConfig(AppConfig):
    name = "qa2portal"
    verbose_name = "qa2portal"

    def ready(self) -> None:
        from qa2portal import checks  # noqa: F401 - registers the system checks
