"""/api/ routes of the calibration app (mounted by qa2portal/urls.py)."""

from rest_framework.routers import SimpleRouter

from calibration.api import views

router = SimpleRouter()
router.register("script-versions", views.ScriptVersionViewSet, basename="scriptversion")
router.register("runs", views.RunViewSet, basename="run")
router.register("products", views.ProductViewSet, basename="product")

urlpatterns = router.urls
