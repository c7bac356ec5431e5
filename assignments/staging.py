"""Staging: the MOUS's folder tree under DATA_ROOT, made when it is assigned or gains an EB."""

from pathlib import Path

from assignments.datafiles import eb_folder, inside_data_root, mous_folder
from assignments.models import Mous


def mous_stage(mous: Mous) -> Path:
    """Create the seeds' folder tree for `mous` under DATA_ROOT (idempotent); returns its root.

    <project>_<uid>/Calibration_<eb tail>/ per EB, Combination/calibrated/ only with more
    than one EB, Imaging/.
    """
    root = mous_folder(mous)
    ebs = list(mous.execution_blocks.all())
    for eb in ebs:
        eb_folder(eb).mkdir(parents=True, exist_ok=True)
    if len(ebs) > 1:
        inside_data_root(root / "Combination" / "calibrated").mkdir(parents=True, exist_ok=True)
    inside_data_root(root / "Imaging").mkdir(parents=True, exist_ok=True)
    return root
