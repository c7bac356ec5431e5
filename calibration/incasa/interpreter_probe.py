"""Where CASA's interpreter lives (calibration.casa.interpreter_roots, run by path with -I).

Prints a JSON list of folders: its prefixes, its import path and casadata's install folder.
Imports nothing of the project: -I means the project is not on its path.
"""

import importlib.util
import json
import os
import sys


def main() -> None:
    spec = importlib.util.find_spec("casadata")
    roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    roots += [p for p in sys.path if p and os.path.isdir(p)]
    if spec and spec.origin:
        roots.append(os.path.dirname(os.path.dirname(spec.origin)))
    print(json.dumps(sorted({os.path.abspath(r) for r in roots})))


if __name__ == "__main__":
    main()
