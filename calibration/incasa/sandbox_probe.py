"""Can the sandbox start CASA's interpreter? `python -m calibration.incasa.sandbox_probe`
(calibration.casa.sandbox_decide): imports casadata and prints the interpreter's prefix."""

import sys


def main() -> None:
    import casadata  # noqa: F401 - the import is the probe

    print(sys.prefix)


if __name__ == "__main__":
    main()
