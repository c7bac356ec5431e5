"""In CASA (`python -P -m tests.calibration.simulate.ngc5921_info MS`): NGC5921's antennas and
channels as msmetadata lists them, on one line `NGCINFO {json}`."""

import json
import sys


def main() -> None:
    import casatools

    m = casatools.msmetadata()
    m.open(sys.argv[1])
    info = {"antennas": list(m.antennanames()), "spw_nchan": [int(m.nchan(i)) for i in range(m.nspw())]}
    print("NGCINFO " + json.dumps(info))


if __name__ == "__main__":
    main()
