"""CASA site configuration, selected with CASASITECONFIG for every CASA subprocess.

Offline and deterministic: measures data from the casadata package, no auto-updates, and
the import-time logger sent to /dev/null (otherwise casatools writes casa-<date>.log into
the current directory); each run then points casalog at its own log file.
"""

import os

import casadata

measurespath = os.path.join(os.path.dirname(casadata.__file__), "__data__")
measures_auto_update = False
data_auto_update = False
logfile = os.devnull
