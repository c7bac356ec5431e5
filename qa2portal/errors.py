"""Error answers: JSON under /api/, the site's own 404/500 pages elsewhere, also with DEBUG on.

The embedded mode (`make run`) runs with DEBUG on, and Django's DEBUG pages list the whole
URLconf on a 404 and answer an API client with HTML. So:
- `handler404/400/403/500` (qa2portal/urls.py) answer JSON for /api/ and render
  templates/404.html / 500.html for pages (Django calls them when DEBUG is off);
- `ErrorAnswersMiddleware` does the same when DEBUG is on (a 404 page never lists the
  URLconf; an API error is never HTML), maps a too-large body to 413 and a JSON body nested
  too deeply for the parser (RecursionError) to 400, and turns any other HTML error answer
  under /api/ into JSON. DEBUG keeps its traceback page for a 500 on a page (not the API),
  which is what a developer running the demo needs.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.urls import Resolver404
from django.utils.log import log_response
from django.views import defaults

API_PREFIX = "/api/"
INTERNAL_ERROR = "Internal server error: the details are in the server log."


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def json_error(status: int, detail: str) -> JsonResponse:
    """The shape DRF uses for its own errors: {"detail": "..."}."""
    return JsonResponse({"detail": detail}, status=status)


def _message(exception: Exception | None) -> str:
    # A view's Http404("choose the version ...") is meant for the reader; the resolver's
    # Resolver404 carries the list of URL patterns tried, which is never shown.
    if exception is None or isinstance(exception, Resolver404) or not exception.args:
        return ""
    message = exception.args[0]
    return message if isinstance(message, str) else ""


# --- handlers (qa2portal/urls.py) --------------------------------------------------------
def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = _message(exception)
    if is_api(request):
        return json_error(404, message or f"Not found: {request.path}")
    return render(request, "404.html", {"path": request.path, "message": message}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return json_error(500, INTERNAL_ERROR)
    # No request context: whatever broke (the database, a context processor) must not break
    # the error page too. 500.html is plain HTML with its style inline.
    try:
        return HttpResponse(loader.get_template("500.html").render(), status=500)
    except Exception:  # the last resort has to answer something
        return HttpResponse(INTERNAL_ERROR, content_type="text/plain", status=500)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return _api_suspicious(exception)
    if isinstance(exception, RequestDataTooBig):
        return HttpResponse(str(exception), content_type="text/plain", status=413)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return json_error(403, _message(exception) or "You do not have permission to do this.")
    return defaults.permission_denied(request, exception)


def _api_suspicious(exception: Exception) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return json_error(413, f"The request body is larger than the {limit:,} bytes this API accepts.")
    return json_error(400, "Bad request.")


# --- middleware --------------------------------------------------------------------------
class ErrorAnswersMiddleware:
    """See the module docstring. Sits right after WhiteNoise: it sees the answers of every
    other middleware, and `request.user` is set by the time it renders a 404 page."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 404 and settings.DEBUG and request.resolver_match is None:
            # No URL pattern matched: DEBUG's page would list them all.
            return page_not_found(request)
        if is_api(request) and response.status_code >= 400 and not _is_json(response):
            return json_error(response.status_code, response.reason_phrase)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return page_not_found(request, exception) if settings.DEBUG or is_api(request) else None
        if not is_api(request):
            return None  # Django's handlers (or DEBUG's traceback page) answer pages
        if isinstance(exception, PermissionDenied):
            return permission_denied(request, exception)
        if isinstance(exception, SuspiciousOperation):
            return _api_suspicious(exception)
        if isinstance(exception, RecursionError):
            # json.loads recurses per nesting level: a body like [[[[...]]]] exhausts the stack.
            return json_error(400, "The JSON body is nested too deeply.")
        response = json_error(500, INTERNAL_ERROR)
        got_request_exception.send(sender=None, request=request)
        log_response(
            "%s: %s",
            response.reason_phrase,
            request.path,
            response=response,
            request=request,
            exception=exception,
        )
        return response


def _is_json(response: HttpResponse) -> bool:
    # DRF's own answers are content-negotiated (JSON for a client, the browsable page for a
    # browser that asked for HTML): leave them alone.
    from rest_framework.response import Response

    return isinstance(response, Response) or response.get("Content-Type", "").startswith("application/json")
