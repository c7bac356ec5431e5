"""Seed the calibrator flux catalogue from calibration/data/calibrator_fluxes.csv (the file as it
is when the migration runs; later changes load with `manage.py load_calibrator_fluxes`)."""

from django.db import migrations


def seed(apps, schema_editor):
    from calibration.catalogue import load_file

    load_file(model=apps.get_model("calibration", "CalibratorFlux"))


class Migration(migrations.Migration):
    dependencies = [
        ("calibration", "0004_calibratorflux"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
