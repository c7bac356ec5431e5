"""Who gets what on the project-wide routes (qa2portal/urls.py). Read by the permission matrix
(tests/assignments/test_permission_matrix.py explains the format)."""

from tests.assignments.matrix import Probe, everyone_reads

ROUTES = {
    "home": [Probe(anon=302, other=302, own=302, drm=302)],  # login, or the user's landing page
    "health": [everyone_reads(302)],
    "login": [everyone_reads(200)],
    "logout": [Probe(anon=405, other=405, own=405, drm=405)],  # POST only (Django 5)
    "rest_framework:login": [everyone_reads(200)],
    "rest_framework:logout": [Probe(anon=405, other=405, own=405, drm=405)],
    # SessionAuthentication is listed first in REST_FRAMEWORK, so DRF can only answer 403 here;
    # listing TokenAuthentication first (as the assignments API does) would make it 401.
    "api-health": [everyone_reads(403)],
    "api-schema": [everyone_reads(200)],  # the schema is public (drf-spectacular default)
    "api-docs": [everyone_reads(200)],
    # The factories' users are not staff: the admin sends all of them to its login page.
    "admin:*": [Probe(anon=302, other=302, own=302, drm=302)],
}
