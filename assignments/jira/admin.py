from django.contrib import admin

from assignments.jira.models import JiraAccount, OutboxComment, WebhookDelivery


@admin.register(JiraAccount)
class JiraAccountAdmin(admin.ModelAdmin):
    list_display = ["account_id", "person"]
    search_fields = ["account_id", "person__user__username"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["received_at", "event", "issue_key", "status", "duplicates"]
    list_filter = ["status", "event"]
    search_fields = ["identifier", "issue_key"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]


@admin.register(OutboxComment)
class OutboxCommentAdmin(admin.ModelAdmin):
    list_display = ["created_at", "issue_key", "kind", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "kind"]
    search_fields = ["issue_key"]
    readonly_fields = [f.name for f in OutboxComment._meta.fields]
