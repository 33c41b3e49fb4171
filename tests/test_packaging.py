"""The package as users get it: ``python -m build`` makes an sdist that carries what the
tests need (helpers, fixtures, ``benchmarks/``, examples, the docs) and a wheel built
from that sdist; both pass ``twine check``; the wheel installed into a fresh venv runs
``genesys-gateway demo``.

Nothing here skips: ``build`` and ``twine`` are in the test extra, and the fresh venv
resolves the dependencies from the configured package index (or wheel cache), as a
user's ``pip install`` would. About 30-40 s, most of it pip.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NAME = "genesys_gateway-0.1.0"
ANSWER = ("answer: In London it is 22°C and clear. Product SKU-8842 has 145 units in the "
          "EU-Central warehouse (in stock).")

#: Directories whose every file belongs in the sdist.
SHIPPED_TREES = ("genesys_gateway", "tests", "benchmarks", "examples", "docs")
#: Files the sdist must have besides those trees.
SHIPPED_FILES = ("LICENSE", "README.md", "CHANGELOG.md", "mkdocs.yml", "setup.cfg",
                 "pyproject.toml", "MANIFEST.in")


def clean_env() -> dict[str, str]:
    """The environment without anything that points Python at this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(*args: str | os.PathLike[str], cwd: pathlib.Path, timeout: float = 300
        ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=clean_env(), text=True,
                            capture_output=True, timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """An sdist, and a wheel built from it (``python -m build``'s default), in a temp dir."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT, cwd=ROOT)
    return out


def sdist_names(dist: pathlib.Path) -> set[str]:
    with tarfile.open(dist / f"{NAME}.tar.gz") as tar:
        return {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}


def expected_files() -> list[str]:
    """What git tracks in the shipped trees (the files on disk when this runs from an
    unpacked sdist, which has no git)."""
    probe = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--", *SHIPPED_TREES],
                           capture_output=True, text=True, check=False)
    if probe.returncode == 0 and probe.stdout.strip():
        return [p for p in probe.stdout.splitlines() if (ROOT / p).is_file()]
    return [str(p.relative_to(ROOT)) for tree in SHIPPED_TREES for p in (ROOT / tree).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]


def test_the_sdist_carries_what_the_tests_need(dist: pathlib.Path) -> None:
    names = sdist_names(dist)
    for needed in ("tests/conftest.py", "tests/approval_helpers.py", "tests/django_env.py",
                   "tests/fixtures_redis.py", "tests/typing/user_script.py",
                   "tests/cli_fixtures/script.json", "benchmarks/__init__.py",
                   "docs/index.md", "docs/reference/client.md", "docs/assets/benchmarks.png",
                   "genesys_gateway/py.typed", *SHIPPED_FILES):
        assert needed in names, f"{needed} is not in the sdist"
    missing = sorted(set(expected_files()) - names)
    assert missing == [], f"tracked files left out of the sdist: {missing}"


def test_the_sdist_has_no_build_debris(dist: pathlib.Path) -> None:
    debris = sorted(n for n in sdist_names(dist)
                    if "__pycache__" in n or n.endswith((".pyc", ".pyo"))
                    or n.split("/")[0] in ("build", "dist", "site", ".git", ".pytest_cache"))
    assert debris == []


def test_the_wheel_is_the_package_only(dist: pathlib.Path) -> None:
    with zipfile.ZipFile(dist / f"{NAME}-py3-none-any.whl") as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"{NAME}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"{NAME}.dist-info/entry_points.txt").decode()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"genesys_gateway", f"{NAME}.dist-info"}, tops
    assert "genesys_gateway/py.typed" in names
    assert any(n.endswith("/LICENSE") and "dist-info" in n for n in names)
    assert "genesys-gateway = genesys_gateway.cli:main" in entry_points
    for line in ("Requires-Python: >=3.10", "Classifier: Programming Language :: Python :: 3.10",
                 "Classifier: Programming Language :: Python :: 3.13",
                 "Project-URL: Documentation, ", "Project-URL: Changelog, ",
                 "Requires-Dist: requests"):
        assert line in metadata, f"{line!r} not in the wheel's METADATA"


def test_twine_check_passes(dist: pathlib.Path) -> None:
    files = sorted(dist.iterdir())
    assert len(files) == 2
    result = run(sys.executable, "-m", "twine", "check", "--strict", *files, cwd=dist)
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_the_wheel_in_a_fresh_venv_runs_the_demo(dist: pathlib.Path,
                                                 tmp_path: pathlib.Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
        dist / f"{NAME}-py3-none-any.whl", cwd=tmp_path)
    where = run(python, "-c", "import genesys_gateway; print(genesys_gateway.__file__)",
                cwd=tmp_path).stdout.strip()
    assert pathlib.Path(where).is_relative_to(venv), where
    demo = run(bindir / "genesys-gateway", "demo", cwd=tmp_path, timeout=60)
    assert ANSWER in demo.stdout, demo.stdout
    assert "stop reason completed" in demo.stdout


def test_the_docs_chart_is_the_benchmark_chart() -> None:
    """docs/assets/benchmarks.png is a copy (MkDocs serves only files under docs/): when
    the benchmarks are re-plotted, copy the new chart there too."""
    chart = (ROOT / "benchmarks" / "results" / "benchmarks.png").read_bytes()
    assert (ROOT / "docs" / "assets" / "benchmarks.png").read_bytes() == chart
