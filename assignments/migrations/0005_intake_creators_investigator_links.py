# Who registered projects, MOUS and EBs; raw data names kept inside the EB folder; one PI and
# one entry per e-mail per project; existing investigators linked to accounts by e-mail.

import assignments.models
import django.core.validators
import django.db.models.deletion
import django.db.models.functions.text
import django.utils.timezone
import re
from django.conf import settings
from django.db import migrations, models


def forget_data_names_outside_the_folder(apps, schema_editor) -> None:
    """A client could store any data_name (even ../../etc/passwd): such an EB has no data."""
    ExecutionBlock = apps.get_model("assignments", "ExecutionBlock")
    for eb in ExecutionBlock.objects.exclude(data_name=""):
        parts = eb.data_name.split("/")
        if eb.data_name.startswith("/") or ".." in parts:
            eb.data_name, eb.data_status = "", "missing"
            eb.save(update_fields=["data_name", "data_status"])


def link_investigators_by_email(apps, schema_editor) -> None:
    """Investigators whose e-mail is exactly one account's become linked to it."""
    Investigator = apps.get_model("assignments", "Investigator")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    for investigator in Investigator.objects.filter(user__isnull=True).exclude(email=""):
        users = list(User.objects.filter(email__iexact=investigator.email.strip())[:2])
        if len(users) == 1:
            investigator.user = users[0]
            investigator.save(update_fields=["user"])


class Migration(migrations.Migration):
    dependencies = [
        ("assignments", "0004_mous_whiteboard_order_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="executionblock",
            name="created_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name="executionblock",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="mous",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="project",
            name="created_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name="project",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="executionblock",
            name="data_name",
            field=models.CharField(
                blank=True, max_length=200, validators=[assignments.models.validate_data_name]
            ),
        ),
        migrations.AlterField(
            model_name="project",
            name="code",
            field=models.CharField(
                max_length=20,
                unique=True,
                validators=[
                    django.core.validators.RegexValidator(
                        re.compile("^\\d{4}\\.[01A]\\.\\d{5}\\.[A-Z]{1,3}$"),
                        "A project code looks like 2019.1.01234.S (year.call.number.type).",
                    )
                ],
            ),
        ),
        migrations.RunPython(forget_data_names_outside_the_folder, migrations.RunPython.noop),
        migrations.RunPython(link_investigators_by_email, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="executionblock",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("data_name__startswith", "/"),
                    ("data_name", ".."),
                    ("data_name__startswith", "../"),
                    ("data_name__contains", "/../"),
                    ("data_name__endswith", "/.."),
                    _connector="OR",
                    _negated=True,
                ),
                name="eb_data_name_inside_folder",
            ),
        ),
        migrations.AddConstraint(
            model_name="investigator",
            constraint=models.UniqueConstraint(
                condition=models.Q(("role", "pi")),
                fields=("project",),
                name="investigator_one_pi_per_project",
            ),
        ),
        migrations.AddConstraint(
            model_name="investigator",
            constraint=models.UniqueConstraint(
                models.F("project"),
                django.db.models.functions.text.Lower("email"),
                condition=models.Q(("email", ""), _negated=True),
                name="investigator_email_once_per_project",
            ),
        ),
    ]
