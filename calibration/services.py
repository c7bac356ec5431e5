"""Moved: script versions are in calibration/scripts.py, the run lifecycle in calibration/runs.py,
flag versions in calibration/flagversions.py.

Kept only for calibration/generation.py, which another change is renaming; switch its import to
calibration.scripts there and delete this module.
"""

from calibration.scripts import script_get_or_create, script_version_create

__all__ = ["script_get_or_create", "script_version_create"]
