"""An EB's raw data: one rule for generation, from-scratch runs, the demo and ingest.

The raw data (an ASDM, an MS or a UVFITS file) lives under `<EB folder>/raw/`, with any
name; `ExecutionBlock.data_name` is its path relative to the EB folder. The working MS
(`eb.ms_name`, in the EB folder itself) is what step 0 of the calibration script makes from
it, so removing the working MS never loses the data.
"""

from pathlib import PurePosixPath

from assignments.models import ExecutionBlock
from calibration.standard_scripts import RawData

RAW_FOLDER = "raw"

MS_SUFFIXES = (".ms",)
UVFITS_SUFFIXES = (".fits", ".uvfits", ".uvf")


def raw_kind(name: str) -> str:
    """ms | uvfits | asdm, from the raw data's file name (an ASDM is a folder with any name)."""
    lowered = name.lower().rstrip("/")
    if lowered.endswith(MS_SUFFIXES):
        return "ms"
    if lowered.endswith(UVFITS_SUFFIXES):
        return "uvfits"
    return "asdm"


def raw_data(eb: ExecutionBlock) -> RawData:
    """How step 0 gets the working MS from the EB's raw data.

    "present" only when the recorded data *is* the working MS (an EB registered before the
    raw/ rule); a raw MS with the same file name under raw/ is raw data like any other.
    """
    name = eb.data_name
    if not name or PurePosixPath(name) == PurePosixPath(eb.ms_name):
        return RawData("present")
    return RawData(raw_kind(name), name)


def raw_data_is_separate(eb: ExecutionBlock) -> bool:
    """True when re-running step 0 can rebuild the working MS from the raw data."""
    return raw_data(eb).kind != "present"
