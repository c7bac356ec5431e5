"""OpenAPI schema post-processing (drf-spectacular hook, SPECTACULAR_SETTINGS): what every
operation of this API can answer besides its success, so clients (and schemathesis) are told.

drf-spectacular documents the success answer of each operation and what a view declares. The
error answers come from DRF and qa2portal/errors.py for every route alike, as JSON:
- 400 bad input: {"field": ["message", ...]} or {"detail": "..."};
- 401 no or bad credentials (token first, so a WWW-Authenticate header names it);
- 403 signed in but not allowed; 404 unknown id, route or page; 405 wrong method;
- 413 body over DATA_UPLOAD_MAX_MEMORY_SIZE; 415 a body type the operation does not parse;
- 429 sign-in throttled (POST /api/token/).
"""

from qa2portal.ids import MAX_ID

ERROR_SCHEMA = {
    "type": "object",
    "description": 'An error: {"detail": "..."} or, for bad input, the message(s) per field.',
    "additionalProperties": True,
}
COMMON_ERRORS = {
    "400": "Bad input; nothing was changed.",
    "401": "Authentication credentials were not provided or are invalid.",
    "403": "Not allowed for this account.",
    "404": "No such object, route or page.",
    "405": "Method not allowed.",
    "413": "The request body is too large.",
    "415": "Unsupported media type.",
    "429": "Too many failed sign-ins: try again later.",
}
PAGINATION_PARAMETERS = {"page", "per_page"}


def add_error_responses(result: dict, generator, request, public) -> dict:
    """Every operation may answer the common errors; integer query parameters are ids, pages or
    page sizes, all >= 1 (ids up to MAX_ID: qa2portal/ids.py); optional ones may be sent empty."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, description in COMMON_ERRORS.items():
                operation["responses"].setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                schema = parameter.get("schema", {})
                if not parameter.get("required"):
                    # Every filter here reads an empty value (?page=&kind=) as absent, as an HTML
                    # form sends an unused field.
                    parameter.setdefault("allowEmptyValue", True)
                if schema.get("type") == "integer":
                    schema.setdefault("minimum", 1)
                    if parameter["name"] not in PAGINATION_PARAMETERS:
                        schema.setdefault("maximum", MAX_ID)
    return result
