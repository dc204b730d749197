"""Builds the programs of every language that the cross-language tests run."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYPKG = ROOT / "bindings" / "python"


def library():
    lib = os.environ.get("NDSHM_LIBRARY") or str(ROOT / "target" / "release" / "libndshm.so")
    assert os.path.exists(lib), f"{lib} missing: run `make lib` (make test does)"
    return pathlib.Path(lib).resolve()


@pytest.fixture(scope="session")
def libdir(tmp_path_factory):
    """A directory with libndshm.so and its SONAME link."""
    lib = library()
    d = tmp_path_factory.mktemp("lib")
    soname = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True,
                            check=True).stdout.split("Library soname: [")[1].split("]")[0]
    for link in ("libndshm.so", soname):
        (d / link).symlink_to(lib)
    return d


def have(tool):
    return shutil.which(tool) is not None


@pytest.fixture(scope="session")
def agents(tmp_path_factory, libdir):
    """{language: argv prefix} for the matrix agents; Fortran absent without gfortran."""
    out = tmp_path_factory.mktemp("agents")
    link = [f"-L{libdir}", "-lndshm", f"-Wl,-rpath,{libdir}"]
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}",
                    str(ROOT / "tests/agents/agent.c"), *link, "-o", str(out / "c_agent")], check=True)
    res = {"C": [str(out / "c_agent")]}
    subprocess.run(["cargo", "build", "-q", "--release", "--example", "matrix_agent",
                    "--manifest-path", str(ROOT / "Cargo.toml")], check=True)
    res["Rust"] = [str(ROOT / "target/release/examples/matrix_agent")]
    res["Python"] = [sys.executable, str(ROOT / "tests/agents/agent.py")]
    if have("gfortran"):
        res["Fortran"] = [str(build_fortran(out, libdir, ROOT / "tests/agents/agent.f90", "f_agent"))]
    else:
        print("\nSKIPPED Fortran cells: gfortran is not installed (apt-get install gfortran)")
    return res


def build_fortran(out, libdir, src, exe_name):
    """Compiles the ndshm module and `src` with gfortran into out/exe_name."""
    mod = out / "mod"
    mod.mkdir(exist_ok=True)
    flags = ["-std=f2018", "-Wall", "-Wextra", "-Werror", f"-J{mod}"]
    subprocess.run(["gfortran", *flags, "-c", str(ROOT / "bindings/fortran/ndshm.f90"),
                    "-o", str(mod / "ndshm.o")], check=True)
    exe = out / exe_name
    subprocess.run(["gfortran", "-Wall", "-Werror", "-ffree-line-length-none", f"-I{mod}", str(src),
                    str(mod / "ndshm.o"), f"-L{libdir}", "-lndshm", f"-Wl,-rpath,{libdir}", "-o", str(exe)],
                   check=True)
    return exe


def env():
    return dict(os.environ, PYTHONPATH=str(PYPKG), NDSHM_LIBRARY=str(library()))
