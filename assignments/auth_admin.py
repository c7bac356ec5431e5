"""Admin for API tokens (revoke = delete) and failed sign-in counters (unlock = delete).

Nothing can be added here: a token exists only as its sha256, so it is issued by POST
/api/token/, which shows it once; the counters are written by sign-ins."""

from django.contrib import admin

from assignments.auth import ApiToken, LoginFailure


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["user", "created_at", "last_used_at", "digest_start"]
    search_fields = ["user__username"]
    list_select_related = ["user"]

    @admin.display(description="sha256 starts with")
    def digest_start(self, token: ApiToken) -> str:
        return token.digest[:12]


@admin.register(LoginFailure)
class LoginFailureAdmin(ReadOnlyAdmin):
    list_display = ["key_start", "failures", "window_started_at", "last_failure_at", "locked_until"]
    ordering = ["-last_failure_at"]

    @admin.display(description="key (sha256 of user name and address)")
    def key_start(self, row: LoginFailure) -> str:
        return row.key[:12]
