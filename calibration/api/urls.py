"""/api/ routes of the calibration app (mounted by qa2portal/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from calibration.api import ingest, views

router = SimpleRouter()
router.register("script-versions", views.ScriptVersionViewSet, basename="scriptversion")
router.register("runs", views.RunViewSet, basename="run")
router.register("products", views.ProductViewSet, basename="product")
router.register("ingests", ingest.DataIngestViewSet, basename="dataingest")

urlpatterns = [
    *router.urls,
    path("execution-blocks/<int:pk>/ingest/", ingest.EbIngestView.as_view(), name="executionblock-ingest"),
    path(
        "execution-blocks/<int:pk>/ingest/upload/",
        ingest.EbIngestUploadView.as_view(),
        name="executionblock-ingest-upload",
    ),
]
