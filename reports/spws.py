"""One spw convention on every page: the MS's spw id, with the split's id beside it.

Caltables made on a split (`<uid>.ms.split`) number spws 0..n-1; Tsys tables and the raw MS use
the MS's ids. The CASA side records `summary["ms_spw"]` = {table spw: MS spw} (empty when the
table's ids already are the MS's). Django-free.
"""

from collections.abc import Mapping


def ms_spw(summary: Mapping, spw: int | str) -> int:
    """The MS's id of a table's spw."""
    return int((summary.get("ms_spw") or {}).get(str(spw), spw))


def split_spw(summary: Mapping, spw: int | str) -> int | None:
    """The table's own (split) id, or None when it is the MS's id."""
    mapping = summary.get("ms_spw") or {}
    return int(spw) if str(spw) in mapping and int(mapping[str(spw)]) != int(spw) else None


def spw_label(summary: Mapping, spw: int | str) -> str:
    """'spw 19 (split 0)', or 'spw 19' when the table uses the MS's ids."""
    split = split_spw(summary, spw)
    label = f"spw {ms_spw(summary, spw)}"
    return f"{label} (split {split})" if split is not None else label
