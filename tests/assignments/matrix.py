"""Machinery of the permission matrix (see tests/assignments/test_permission_matrix.py for the how-to).

A route is identified by its URL name with namespace ("mous-transition", "admin:*" for a whole
namespace). Each app's table, `tests/<app>/permission_table.py`, maps those names to a list of
Probes: one request each, with the status every persona must get.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

# Namespaces classified as a whole (their own app tests them; we probe one representative URL).
WHOLE_NAMESPACES = ("admin",)

ANON_API = 401  # token authentication answers first: 401 with WWW-Authenticate
ANON_PAGE = 302  # login_required redirects to /login/


def by_pk(mous: Any) -> dict:
    return {"pk": mous.pk}


@dataclass(frozen=True)
class Probe:
    """One request and the status each persona gets.

    anon: nobody signed in. other: a reducer on a MOUS assigned to someone else. own: that
    reducer on the MOUS assigned to them. drm: a DRM (on the reducer's MOUS). missing: a DRM on
    an object that does not exist (kwargs built with pk=0); None = route takes no object.
    `kwargs(mous)` builds the URL kwargs from the target MOUS; `data(world, mous)` the body.
    """

    anon: int
    other: int
    own: int
    drm: int
    method: str = "get"
    kwargs: Callable[[Any], dict] | None = None
    data: Callable[[Any, Any], dict] | None = None
    missing: int | None = None

    def __post_init__(self) -> None:
        if self.kwargs is not None and self.missing is None:
            object.__setattr__(self, "missing", 404)


def api(anon: int = ANON_API, *, other: int, own: int, drm: int, **kw) -> Probe:
    return Probe(anon=anon, other=other, own=own, drm=drm, **kw)


def page(anon: int = ANON_PAGE, *, other: int, own: int, drm: int, **kw) -> Probe:
    return Probe(anon=anon, other=other, own=own, drm=drm, **kw)


def everyone_reads(anon: int = ANON_API, **kw) -> Probe:
    return Probe(anon=anon, other=200, own=200, drm=200, **kw)


def manager_only(ok: int, anon: int = ANON_API, **kw) -> Probe:
    return Probe(anon=anon, other=403, own=403, drm=ok, **kw)


def url_names() -> dict[str, str]:
    """Every route of the URLconf: key -> pattern, with WHOLE_NAMESPACES collapsed to 'ns:*'."""
    found: dict[str, str] = {}

    def walk(patterns: list, prefix: str, namespace: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                ns = entry.namespace or ""
                full_ns = f"{namespace}:{ns}".strip(":") if ns else namespace
                if full_ns in WHOLE_NAMESPACES:
                    found[f"{full_ns}:*"] = route
                    continue
                walk(entry.url_patterns, route, full_ns)
            elif isinstance(entry, URLPattern):
                key = entry.name or route
                found[f"{namespace}:{key}" if namespace and entry.name else key] = route

    walk(get_resolver().url_patterns, "", "")
    return found
