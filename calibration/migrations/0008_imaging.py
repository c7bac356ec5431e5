# The combination's copy becomes the copy of calibrated data into Combination/calibrated or
# Imaging/ (a destination); the imaging preparation script is a kind of its own.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calibration", "0007_combination_copy"),
    ]

    operations = [
        migrations.AlterField(
            model_name="script",
            name="kind",
            field=models.CharField(
                choices=[
                    ("calibration", "Calibration"),
                    ("combination", "Combination"),
                    ("imaging_prep", "Imaging preparation"),
                    ("imaging", "Imaging"),
                ],
                max_length=12,
            ),
        ),
        migrations.RenameModel(old_name="CombinationCopy", new_name="CalibratedCopy"),
        migrations.AlterField(
            model_name="calibratedcopy",
            name="mous",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="calibrated_copies",
                to="assignments.mous",
            ),
        ),
        migrations.AddField(
            model_name="calibratedcopy",
            name="destination",
            field=models.CharField(
                choices=[("combination", "Combination/calibrated"), ("imaging", "Imaging")],
                default="combination",
                max_length=12,
            ),
        ),
    ]
