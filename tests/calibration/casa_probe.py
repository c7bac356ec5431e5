"""Small things for tests to run in a CASA subprocess: `python -P -m tests.calibration.casa_probe WHAT`.

Found through PYTHONPATH (the checkout, calibration.casa.casa_environment), like the app's
in-CASA modules; only tests and benchmarks start it (outside the sandbox, which shows CASA
calibration/ and reports/ only).
"""

import json
import os
import subprocess
import sys
import time


def main() -> None:
    what = sys.argv[1]
    if what == "environ":  # the environment CASA gets
        print(json.dumps(dict(os.environ)))
    elif what == "sleep-with-child":  # a process group that never ends by itself
        subprocess.Popen(["sleep", "300"])
        time.sleep(300)
    elif what == "import-casa":
        import casatasks  # noqa: F401
        import casatools  # noqa: F401
    elif what == "nothing":  # a bare interpreter start
        pass
    else:
        raise SystemExit(f"unknown probe {what!r}")


if __name__ == "__main__":
    main()
