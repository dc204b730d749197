"""Fixtures: unique array names cleaned up also when a test fails, the repository
paths, and C programs compiled against include/ndshm.h and the library under test."""

import itertools
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]

# NDSHM_TEST_INSTALLED=1: test the package as installed (a wheel in a fresh venv, see
# tests/py/test_python_dist.py), with its bundled library and nothing from the source
# tree; otherwise the source tree with the library the Makefile just built.
INSTALLED = os.environ.get("NDSHM_TEST_INSTALLED") == "1"
if INSTALLED:
    if "NDSHM_LIBRARY" in os.environ:
        raise RuntimeError("NDSHM_TEST_INSTALLED=1 tests the bundled library: unset NDSHM_LIBRARY")
    import ndshm._lib

    if pathlib.Path(ndshm.__file__).resolve().is_relative_to(ROOT):
        raise RuntimeError(f"NDSHM_TEST_INSTALLED=1 but ndshm comes from the source tree: {ndshm.__file__}")
    LIBRARY = ndshm._lib._library_path()
    PKG_PATH = ""  # child processes import the installed package too
else:
    PKG_PATH = str(ROOT / "bindings" / "python")
    sys.path.insert(0, PKG_PATH)
    if "NDSHM_LIBRARY" not in os.environ:
        # The library the Makefile just built; `pip install` users get the bundled copy.
        for profile in ("release", "debug"):
            cand = ROOT / "target" / profile / "libndshm.so"
            if cand.exists():
                os.environ["NDSHM_LIBRARY"] = str(cand)
                break
    LIBRARY = os.environ.get("NDSHM_LIBRARY", "")

_counter = itertools.count()


@pytest.fixture
def uname():
    """A unique bare shm name; whatever it names is removed after the test."""
    made = []

    def make(tag="t"):
        n = f"ndshm-py-{tag}-{os.getpid()}-{next(_counter)}"
        made.append(n)
        return n

    yield make
    for n in made:
        try:
            os.unlink(f"/dev/shm/{n}")
        except FileNotFoundError:
            pass


@pytest.fixture(scope="session")
def c_tool(tmp_path_factory):
    """Compiles tests/c/sa_tool.c and examples-c/consumer.c; returns {name: path}."""
    lib = pathlib.Path(LIBRARY).resolve()
    out = tmp_path_factory.mktemp("c")
    libdir = out / "lib"
    libdir.mkdir()
    soname = subprocess.run(
        ["readelf", "-d", str(lib)], capture_output=True, text=True, check=True
    ).stdout.split("Library soname: [")[1].split("]")[0]
    for link in ("libndshm.so", soname):
        (libdir / link).symlink_to(lib)
    progs = {}
    for src in ("tests/c/sa_tool.c", "examples-c/consumer.c"):
        exe = out / pathlib.Path(src).stem
        subprocess.run(
            ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}", str(ROOT / src),
             f"-L{libdir}", "-lndshm", f"-Wl,-rpath,{libdir}", "-o", str(exe)],
            check=True,
        )
        progs[exe.name] = exe
    return progs


def run_python(code, *args, env=None):
    """Runs a separate Python process with the same ndshm; returns CompletedProcess."""
    e = dict(os.environ, PYTHONPATH=PKG_PATH, **(env or {}))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=e)
