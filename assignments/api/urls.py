"""/api/ routes of the assignments app (mounted by qa2portal/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from assignments.api import views

# SimpleRouter (no API root view): other apps mount their own routers under /api/ too.
router = SimpleRouter()
router.register("projects", views.ProjectViewSet, basename="project")
router.register("mous", views.MousViewSet, basename="mous")
router.register("execution-blocks", views.ExecutionBlockViewSet, basename="executionblock")
router.register("assignments", views.AssignmentViewSet, basename="assignment")
router.register("audit", views.StateChangeViewSet, basename="statechange")

urlpatterns = [
    path("token/", views.TokenView.as_view(), name="api-token"),
    *router.urls,
]
