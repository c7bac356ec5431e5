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

Domain errors (a refused move, a stale version, a script too large, ...) are subclasses of
`DomainError` and carry their HTTP status: `api_exception_handler` (DRF's EXCEPTION_HANDLER)
answers them {"detail": ...} with that status, `refusal_page` turns them into the page answer
of an HTML view. A Django ValidationError raised by a service is the 400 of both.
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation, ValidationError
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.urls import Resolver404, reverse
from django.utils.log import log_response
from django.views import defaults

API_PREFIX = "/api/"
INTERNAL_ERROR = "Internal server error: the details are in the server log."


# --- domain errors -----------------------------------------------------------------------
class DomainError(Exception):
    """A request the domain refuses; `status` is its HTTP meaning (400: bad input)."""

    status = 400

    def details(self) -> dict:
        """What the API answer carries besides "detail" (the allowed moves, the version, ...)."""
        return {}


class Forbidden(DomainError):
    """This user may not do this (403)."""

    status = 403


class Unavailable(DomainError):
    """What was asked for is not there (404)."""

    status = 404


class Conflict(DomainError):
    """The request is fine but the current state says no (409)."""

    status = 409


class PreconditionFailed(DomainError):
    """The client decided on an older version of the row (412)."""

    status = 412


class TooLarge(DomainError):
    """The request carries more than the limit (413)."""

    status = 413


def error_text(exc: Exception) -> str:
    """The reader's text of a domain error or of a Django ValidationError (its messages)."""
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


def error_status(exc: Exception) -> int:
    return exc.status if isinstance(exc, DomainError) else 400


# --- the API's answer to them (REST_FRAMEWORK["EXCEPTION_HANDLER"]) -----------------------
def api_exception_handler(exc: Exception, context: dict):
    """DRF's handler, plus: a DomainError is {"detail": ..., **details} with its status; a
    Django ValidationError from a service is DRF's 400 with the same messages."""
    from rest_framework import exceptions
    from rest_framework.response import Response
    from rest_framework.views import exception_handler

    # Each domain error is raised inside an atomic block that has already rolled back:
    # answering it (instead of letting it out) commits nothing.
    if isinstance(exc, DomainError):
        return Response({"detail": str(exc), **exc.details()}, status=exc.status)
    if isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    return exception_handler(exc, context)


# --- the pages' answer to them -------------------------------------------------------------
PageAnswer = Callable[..., HttpResponse]


def refusal_page(
    answer: PageAnswer | None = None,
    *,
    back: str | Callable[..., str] | None = None,
    prefix: str = "",
    message: Callable[[Exception], str] | None = None,
    also: tuple[type[Exception], ...] = (),
):
    """Decorate a page view: a DomainError (or one of `also`, e.g. a Django ValidationError
    from a service) the view lets out becomes its page answer.

    `answer(request, exc, *args, **kwargs)` builds that answer; without it the answer is an
    error message (`message(exc)`, by default `prefix` + the error's text) and a redirect to
    `back`: a URL name reversed with the view's arguments, or a callable(request, *args,
    **kwargs) giving the URL.
    """
    caught: tuple[type[Exception], ...] = (DomainError, *also)

    def decorate(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except caught as exc:
                if answer is not None:
                    return answer(request, exc, *args, **kwargs)
                text = message(exc) if message is not None else f"{prefix}{error_text(exc)}"
                messages.error(request, text)
                if callable(back):
                    return redirect(back(request, *args, **kwargs))
                return redirect(reverse(back, args=args, kwargs=kwargs))

        return wrapper

    return decorate


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
