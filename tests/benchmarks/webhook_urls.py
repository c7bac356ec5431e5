from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request):
    """The baseline: the same server, middleware and connection handling, no work."""
    return HttpResponse(b"{}", content_type="application/json")


urlpatterns = [path("bench/bare/", bare), path("", include("qa2portal.urls"))]
