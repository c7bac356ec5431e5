"""The site's URLconf plus views that fail for real, to test the 500 answers (ROOT_URLCONF in tests)."""

from django.http import HttpRequest
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from qa2portal.urls import handler400, handler403, handler404, handler500  # noqa: F401 - Django reads them here
from qa2portal.urls import urlpatterns as site_urlpatterns


@api_view(["GET", "POST"])
@permission_classes([AllowAny])
def api_boom(request):
    raise RuntimeError("a bug in an API view")


def page_boom(request: HttpRequest):
    raise RuntimeError("a bug in a page")


def plain_api_boom(request: HttpRequest):
    raise RuntimeError("a bug in a plain Django view under /api/")


urlpatterns = [
    path("api/boom/", api_boom),
    path("api/plain-boom/", plain_api_boom),
    path("boom/", page_boom),
    *site_urlpatterns,
]
