"""The Fortran module: generated file up to date, programs compiled with gfortran by
the suite, errors as status plus message, arrays seen identically by numpy."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, build_fortran, env

pytestmark = pytest.mark.skipif(not shutil.which("gfortran"), reason="gfortran is not installed")


def test_module_is_generated_from_the_header():
    r = subprocess.run([sys.executable, str(ROOT / "scripts/gen_fortran.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_fortran_program_errors_and_numpy_view(tmp_path, libdir):
    exe = build_fortran(tmp_path, libdir, ROOT / "tests/py/fortran_errors.f90", "fortran_errors")
    base = f"ndshm-f-{os.getpid()}"
    try:
        r = subprocess.run([str(exe), base], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].startswith("SA_ERR_NOT_FOUND") and "no such array" in lines[0]
        assert lines[1].startswith("SA_ERR_MISMATCH") and "dtype float32" in lines[1]
        assert lines[2].startswith("SA_ERR_EXISTS") and "already exists" in lines[2]
        assert lines[3].startswith("SA_ERR_INVALID") and "'/'" in lines[3]
        assert lines[-1] == "fortran done"
        code = ("import ndshm, sys; a = ndshm.attach(sys.argv[1]); "
                "print(a.shape, a.flags.f_contiguous, a[1, 2], a.dtype)")
        p = subprocess.run([sys.executable, "-c", code, base + "-a"], capture_output=True, text=True, env=env())
        assert p.stdout.split("\n")[0] == "(3, 4) True 23.0 float64", p.stderr
    finally:
        for suffix in ("-a", "-c"):
            try:
                os.unlink(f"/dev/shm/{base}{suffix}")
            except FileNotFoundError:
                pass


def test_fortran_example_reads_c_array(tmp_path, libdir):
    exe = build_fortran(tmp_path, libdir, ROOT / "bindings/fortran/example.f90", "example")
    name = f"shm://ndshm-fex-{os.getpid()}"
    sys.path.insert(0, str(ROOT / "bindings/python"))
    os.environ.setdefault("NDSHM_LIBRARY", env()["NDSHM_LIBRARY"])
    import ndshm

    a = ndshm.create(name, (300, 200))
    a[...] = np.arange(60000).reshape(300, 200)
    try:
        r = subprocess.run([str(exe), name], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout
        assert "as a(200,300) (row-major" in r.stdout and f"checksum (sum) {a.sum():.6f}" in r.stdout
    finally:
        ndshm.delete(name)
