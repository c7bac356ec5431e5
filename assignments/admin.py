from django.contrib import admin

from assignments.models import Person


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "initials"]
    list_filter = ["role"]


import assignments.auth_admin  # noqa: E402  (API tokens: revoke; failed sign-ins: unlock)
import assignments.jira.admin  # noqa: E402, F401  (JIRA deliveries, outbox, account links)
