from django.apps import AppConfig


class Qa2portalConfig(AppConfig):
    name = "qa2portal"
    verbose_name = "qa2portal"

    def ready(self) -> None:
        from assignments.selectors import install_whiteboard
        from qa2portal import checks  # noqa: F401 - registers the system checks
        from qa2portal.selectors.whiteboard import whiteboard_rows

        # The whiteboard row reads every app; the pages that show it live in assignments.
        install_whiteboard(whiteboard_rows)
