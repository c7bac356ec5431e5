"""Script versions: validating an upload, storing immutable versions, Python 2 conversion, diffs."""

import difflib
import hashlib
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assignments.models import ExecutionBlock, Mous
from calibration import scriptparse
from calibration.models import Script, ScriptVersion, script_storage_path
from qa2portal.errors import DomainError


class InvalidScript(DomainError, ValueError):
    """An upload that is not a script we accept (type, size, encoding, syntax): 400."""


class ScriptTooLarge(InvalidScript):
    """A script over SCRIPT_MAX_BYTES: 413."""

    status = 413


def script_get_or_create(*, kind: str, mous: Mous, eb: ExecutionBlock | None = None) -> Script:
    if kind == Script.Kind.CALIBRATION and eb is None:
        raise InvalidScript("a calibration script belongs to an execution block")
    script, _ = Script.objects.get_or_create(kind=kind, mous=mous, execution_block=eb)
    return script


def size_text(size: int) -> str:
    """A byte count as people write it: 1 MB, 512 KB, 1.5 GB (binary units), 900 bytes."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size:,} bytes"


def check_script_size(name: str, size: int) -> None:
    """The one check of a script's size (SCRIPT_MAX_BYTES): ScriptTooLarge when it is over.
    The pages and the API call it with the upload's size before reading it; the service with
    the bytes it was given."""
    if size > settings.SCRIPT_MAX_BYTES:
        raise ScriptTooLarge(
            f"{name}: {size:,} bytes is over the {size_text(settings.SCRIPT_MAX_BYTES)} limit"
        )


def validate_upload(data: bytes, filename: str) -> str:
    """The script text, or InvalidScript naming what is wrong (nothing is stored before this)."""
    name = Path(filename or "").name
    if not name.endswith(".py"):
        raise InvalidScript(f"{name or 'the file'}: only Python scripts (.py) are accepted")
    check_script_size(name, len(data))
    if not data.strip():
        raise InvalidScript(f"{name}: the file is empty")
    if b"\x00" in data:
        raise InvalidScript(f"{name}: binary content (NUL bytes) - a script is UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidScript(f"{name}: not UTF-8 text (byte {exc.start}: {data[exc.start]:#04x})") from None


@transaction.atomic
def script_version_create(
    *,
    script: Script,
    text: str,
    source: str,
    by,
    note: str = "",
    original_name: str = "",
    parent: ScriptVersion | None = None,
) -> ScriptVersion:
    """Store `text` as the next immutable version of `script` (content-addressed, written once)."""
    data = text.encode("utf-8")
    parsed = scriptparse.parse_script(text, filename=original_name)
    if parsed.syntax_error:
        raise InvalidScript(f"not valid Python ({parsed.syntax_error}); nothing was stored")
    sha = hashlib.sha256(data).hexdigest()
    path = script_storage_path(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        try:
            with path.open("xb") as handle:  # never overwrite: identical content has an identical name
                handle.write(data)
        except FileExistsError:
            pass
    locked = Script.objects.select_for_update().get(pk=script.pk)
    last = locked.versions.order_by("-number").first()
    return ScriptVersion.objects.create(
        script=locked,
        number=(last.number + 1) if last else 1,
        sha256=sha,
        size=len(data),
        source=source,
        author=by,
        note=note,
        original_name=original_name[:255],
        parent=parent if parent is not None else last,
        parsed=parsed.to_json(),
    )


def script_upload(
    *, kind: str, mous: Mous, eb: ExecutionBlock | None, data: bytes, filename: str, by, note: str = ""
) -> ScriptVersion:
    """Validate an uploaded script and store it as a new version."""
    text = validate_upload(data, filename)
    script = script_get_or_create(kind=kind, mous=mous, eb=eb)
    return script_version_create(
        script=script,
        text=text,
        source=ScriptVersion.Source.UPLOADED,
        by=by,
        note=note,
        original_name=filename,
    )


def script_convert_python2(*, version: ScriptVersion, by) -> ScriptVersion:
    """A new version holding the Python 3 conversion of a Python 2 version (for review)."""
    converted = scriptparse.convert_python2(version.text())
    if converted is None:
        raise InvalidScript(f"{version} is not a Python 2 script that can be converted")
    return script_version_create(
        script=version.script,
        text=converted,
        source=ScriptVersion.Source.CONVERTED,
        by=by,
        note=f"Python 3 conversion of v{version.number} (lib2to3); review the diff before running",
        parent=version,
    )


def version_diff(old: ScriptVersion, new: ScriptVersion) -> dict:
    """Unified diff of two versions and the steps whose lines changed."""
    a, b = old.text().splitlines(), new.text().splitlines()
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    changed_new_lines: set[int] = set()
    changed_old_lines: set[int] = set()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            changed_old_lines.update(range(i1 + 1, max(i2, i1 + 1) + 1))
            changed_new_lines.update(range(j1 + 1, max(j2, j1 + 1) + 1))

    def touched(version: ScriptVersion, lines: set[int]) -> list[int]:
        return [
            s["number"]
            for s in version.parsed.get("steps", [])
            if any(s["start_line"] <= n <= s["end_line"] for n in lines)
        ]

    changed_steps = sorted(set(touched(old, changed_old_lines)) | set(touched(new, changed_new_lines)))
    unified = list(difflib.unified_diff(a, b, f"v{old.number}", f"v{new.number}", lineterm="", n=3))
    return {
        "unified": unified,
        "changed_steps": changed_steps,
        "opcodes": matcher.get_opcodes(),
        "a": a,
        "b": b,
    }


def version_confirm_blocking(*, version: ScriptVersion, by) -> ScriptVersion:
    """The reducer read the error-level findings and runs this version as it is anyway."""
    if not version.blocking_findings:
        raise InvalidScript(f"{version} has no error-level findings to confirm")
    if version.blocking_confirmed_at is None:
        version.blocking_confirmed_by = by
        version.blocking_confirmed_at = timezone.now()
        version.save(update_fields=["blocking_confirmed_by", "blocking_confirmed_at"])
    return version
