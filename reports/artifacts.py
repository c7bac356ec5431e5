"""Read a diagnostic's artifact (a small .npz under the run folder); never a CASA table."""

import numpy as np

from assignments.services import inside_data_root
from reports.models import Diagnostic


def load(diagnostic: Diagnostic) -> dict[str, np.ndarray]:
    if not diagnostic.artifact:
        return {}
    path = inside_data_root(diagnostic.artifact_path)
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
