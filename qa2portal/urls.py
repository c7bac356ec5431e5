from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from assignments.auth import ThrottledAuthenticationForm
from qa2portal import views

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health_page, name="health"),
    # The form says when too many failed sign-ins locked the user name (assignments/auth.py).
    path(
        "login/", auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm), name="login"
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/health/", views.health_api, name="api-health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
    path("api/", include("assignments.api.urls")),  # /api/projects/, /api/mous/, ... (DRF router)
    path("", include("assignments.urls")),  # /whiteboard/, /my-work/, /mous/<pk>/
    path("", include("assignments.jira.urls")),  # /api/hooks/jira/ (HMAC-signed) and the DRM /jira/ page
    path("api/", include("calibration.api.urls")),  # /api/script-versions/, /api/runs/, /api/products/
    path("", include("calibration.urls")),  # /calibration/eb/<pk>/, /calibration/runs/<pk>/, ...
    path("", include("reports.urls")),  # /reports/eb/<pk>/ diagnostics, topic pages, compare
]

# Error answers: JSON under /api/, templates/404.html and 500.html for pages (qa2portal/errors.py;
# its middleware gives the same answers while DEBUG is on).
handler400 = "qa2portal.errors.bad_request"
handler403 = "qa2portal.errors.permission_denied"
handler404 = "qa2portal.errors.page_not_found"
handler500 = "qa2portal.errors.server_error"
