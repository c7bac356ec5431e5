"""Events from the CASA subprocess to the worker: marked JSON lines on stdout."""

import json
import sys

MARKER = "\x1eQA2EVENT "
# inspect_ms prints its one answer behind this (imported by the worker without CASA).
SUMMARY_MARKER = "QA2_MS_SUMMARY"


def emit(event: str, **fields: object) -> None:
    # One write() per line: below PIPE_BUF it cannot interleave with CASA's own output.
    line = MARKER + json.dumps({"event": event, **fields}, default=str) + "\n"
    sys.__stdout__.write(line)
    sys.__stdout__.flush()
