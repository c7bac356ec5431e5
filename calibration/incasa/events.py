"""Events from the CASA subprocess to the worker.

The worker's runner writes its events to a pipe of their own (a file descriptor the worker
passed in), each carrying the run's secret nonce; stdout and stderr are only ever output. So
a line a script prints, or that CASA or a tool echoes, can never be taken for an event.

What this does not do: the reducer's script runs in this same interpreter, so code that digs
for the channel on purpose (gc, frames, this module) can write events too. The worker
therefore trusts no event for anything that matters: it owns the process's life and time
limits, the run's final state and the folder lock, and it checks every path an event names.

Without a channel (a runner started by hand with a spec file, as the benchmark does), events
go to stdout behind MARKER.
"""

import contextlib
import json
import os
import sys

MARKER = "\x1eQA2EVENT "
# inspect_ms prints its one answer behind this (imported by the worker without CASA).
SUMMARY_MARKER = "QA2_MS_SUMMARY"


class _Channel:
    fd: int | None = None
    nonce: str = ""


_channel = _Channel()


def open_channel(fd: int, nonce: str) -> None:
    """Send the events to `fd` with `nonce`; the fd is not passed on to subprocesses."""
    os.set_inheritable(fd, False)
    _channel.fd, _channel.nonce = fd, nonce


def emit(event: str, **fields: object) -> None:
    line = MARKER + json.dumps({"event": event, **fields, "nonce": _channel.nonce}, default=str) + "\n"
    if _channel.fd is None:
        # One write() per line: below PIPE_BUF it cannot interleave with CASA's own output.
        stdout = sys.__stdout__
        assert stdout is not None, "no channel and no stdout for the events"
        stdout.write(line)
        stdout.flush()
        return
    # Whatever the step printed goes out first, so the worker files it under the right step.
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            if stream is not None:  # a closed-off std stream is None
                stream.flush()
    data = line.encode("utf-8", errors="replace")
    while data:
        data = data[os.write(_channel.fd, data) :]
