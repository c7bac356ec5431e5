"""Benchmarks print one last line `BENCH <name> ratio=<x.xx> ...` and write var/bench/<name>.json."""

import json
import os
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(name: str, ratio: float, goal: str, details: str = "", **raw: object) -> dict:
    """Write var/bench/<name>.json and print the BENCH line (the last thing a benchmark prints)."""
    record = {"name": name, "ratio": round(ratio, 4), "goal": goal, "cores": os.cpu_count(), **raw}
    folder = Path(settings.BENCH_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(record, indent=1, default=str))
    print(f"\nBENCH {name} ratio={ratio:.2f} {details}".rstrip(), flush=True)
    return record


median = statistics.median


def free_port() -> int:
    """A TCP port on loopback nobody listens on now (for a server a benchmark starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """The test database as a URL, for a server process a benchmark starts."""
    from django.db import connection

    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
