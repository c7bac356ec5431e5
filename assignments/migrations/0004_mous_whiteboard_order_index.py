from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("assignments", "0003_jiraaccount_webhookdelivery_outboxcomment"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="mous",
            index=models.Index(fields=["state_changed_at", "id"], name="mous_whiteboard_order"),
        ),
    ]
