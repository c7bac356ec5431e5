"""Load the calibrator flux catalogue file into the table (idempotent)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calibration.catalogue import CATALOGUE_FILE, load_file


class Command(BaseCommand):
    help = (
        "Add the entries of calibration/data/calibrator_fluxes.csv (or --file) that the catalogue "
        "lacks; entries edited in the portal are kept unless --replace."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=CATALOGUE_FILE)
        parser.add_argument(
            "--replace", action="store_true", help="overwrite entries that differ from the file"
        )

    def handle(self, *args, file: Path, replace: bool, **options) -> None:
        try:
            result = load_file(file, replace=replace)
        except (OSError, ValueError) as exc:
            raise CommandError(f"{file}: {exc}") from exc
        self.stdout.write(f"calibrator fluxes from {file.name}: {result}")
