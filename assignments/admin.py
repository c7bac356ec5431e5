from django.contrib import admin

from assignments.models import Person


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "initials"]
    list_filter = ["role"]
