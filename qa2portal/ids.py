"""Integers that arrive as text (query strings, form fields, headers) and end in a query.

Every table's id is a 64-bit integer (BigAutoField). A larger number in a query is a 500 on
SQLite (OverflowError: Python int too large to convert to SQLite INTEGER, for foreign-key and
IN lookups that Django does not range-check), and `str.isdigit()` accepts digits that `int()`
refuses ("²"). Parse here, once, and answer bad input as bad input.
"""

MAX_ID = 2**63 - 1  # the largest BigAutoField value (signed 64-bit)


def parse_id(raw: object) -> int | None:
    """`raw` as a positive id (1 .. MAX_ID) when it is one, written in ASCII digits; else None."""
    text = str(raw).strip()
    # 19 digits hold MAX_ID; the length check also keeps int() away from huge strings.
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None
