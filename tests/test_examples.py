"""The worked examples in examples/ run: each is its own project, run in a process of its
own (Django settings are configured once per process)."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_django_refunds_example_passes_its_tests():
    project = os.path.join(ROOT, "examples", "django_refunds")
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, "manage.py", "test", "refunds", "--noinput"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Ran 4 tests" in done.stderr and "OK" in done.stderr
