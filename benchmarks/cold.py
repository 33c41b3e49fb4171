"""A cold start in one fresh process: ``python -m benchmarks.cold MODULE``.

Standard library only. Imports the driver ``MODULE`` (its library with it), builds its
``Driver(env)`` (the client, as the contestant's idiom builds one), makes one plain call
against the benchmark server (``BENCH_ENV``), checks the answer, closes the driver and
exits. The runner times the process's CPU (user + system): what a command-line tool or
a freshly started worker pays before its first answer, lazy imports included.
"""

from __future__ import annotations

import importlib
import json
import os
import sys


def main(argv: list[str]) -> int:
    module = importlib.import_module(argv[0])
    driver = module.Driver(json.loads(os.environ["BENCH_ENV"]))
    try:
        from benchmarks.scenarios import check_answer

        check_answer("plain", driver.plain())
    finally:
        driver.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
