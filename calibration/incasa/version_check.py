"""Which CASA this is: `python -m calibration.incasa.version_check` (calibration.casa.check).

Prints one line `CASA_CHECK {json}`: the casatools and casatasks versions, the data path and
how long importing them took.
"""

import json
import time


def main() -> None:
    started = time.perf_counter()
    import casatasks
    import casatools
    from casatools import ctsys

    answer = {
        "casatools": casatools.version_string(),
        "casatasks": casatasks.version_string(),
        "data_path": ctsys.rundata(),
        "import_seconds": round(time.perf_counter() - started, 3),
    }
    print("CASA_CHECK " + json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
