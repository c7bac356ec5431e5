"""Who may do what: DRMs everything, a reducer only on the MOUS assigned to them, anyone signed in reads."""

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

from assignments.models import Mous, user_is_manager, user_may_ingest

MANAGER_ONLY = "Only a DRM or deputy DRM may do this."
INTAKE_ONLY = "Only a DRM, deputy DRM or data analyst may register projects, MOUS and EBs."
NOT_YOURS = "This MOUS is not assigned to you: only its reducer or a DRM may act on it."


def may_work_on(user, mous: Mous) -> bool:
    """Upload, run, move along the lifecycle: the assigned reducer or a manager."""
    return user_is_manager(user) or mous.is_assigned_to(user)


def require_may_work_on(user, mous: Mous) -> None:
    """403 for anyone but the MOUS's reducer or a manager (pages and API alike)."""
    if not may_work_on(user, mous):
        raise PermissionDenied(NOT_YOURS)


class IsManager(BasePermission):
    message = MANAGER_ONLY

    def has_permission(self, request, view) -> bool:
        return user_is_manager(request.user)


class IsManagerOrReadOnly(BasePermission):
    message = MANAGER_ONLY

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or user_is_manager(request.user)


class MayIngest(BasePermission):
    message = INTAKE_ONLY

    def has_permission(self, request, view) -> bool:
        return user_may_ingest(request.user)


class MayIngestOrReadOnly(BasePermission):
    message = INTAKE_ONLY

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or user_may_ingest(request.user)


class MayWorkOnMous(BasePermission):
    """Object check for reducer verbs; the model then decides which moves their role allows."""

    message = NOT_YOURS

    def has_object_permission(self, request, view, obj: Mous) -> bool:
        return request.method in SAFE_METHODS or may_work_on(request.user, obj)
