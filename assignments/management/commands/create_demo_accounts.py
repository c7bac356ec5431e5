from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from assignments.demo import ensure_demo_accounts


class Command(BaseCommand):
    help = "Create (or reset) the demo DRM and reducer accounts and print their logins."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="allow with DEBUG=False")

    def handle(self, *args, force: bool, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("demo accounts have known passwords: refused with DEBUG=False (use --force)")
        for account in ensure_demo_accounts():
            self.stdout.write(f"  {account.role:<8} login: {account.username} / {account.password}")
