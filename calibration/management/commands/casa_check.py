from django.core.management.base import BaseCommand, CommandError

from calibration import casa


class Command(BaseCommand):
    help = "Start CASA in a subprocess; print casatools/casatasks versions, data path and timing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--timeout", type=float, default=120.0)

    def handle(self, *args, timeout: float, **options) -> None:
        try:
            info = casa.check(timeout=timeout)
        except casa.CasaUnavailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"casatools {info['casatools']}\n"
            f"casatasks {info['casatasks']}\n"
            f"data path {info['data_path']}\n"
            f"import {info['import_seconds']:.2f} s, subprocess {info['total_seconds']:.2f} s"
        )
