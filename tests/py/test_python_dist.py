"""The Python package as users get it, not as the source tree runs it.

`python -m build` (the PyPA frontend, from pip) makes an sdist that carries the Rust
sources and the extension's C source, and then, from that sdist unpacked in a temporary
directory outside the repository, a `cp39-abi3-<platform>` wheel (one stable-ABI
extension module, built against numpy 2's headers). The wheel installs in a fresh venv (no system
site packages) with cargo NOT on PATH and passes the binding's whole test suite there,
against the installed package (NDSHM_TEST_INSTALLED=1, see bindings/python/tests/
conftest.py), with numpy 1.x (the source-tree run of `make test` covers the numpy 2.x
installed); `mypy --strict` accepts a user script calling every public function.

Every other CPython 3.9-3.13 found (on PATH as python3.X, or under pyenv) installs the same
wheel with the oldest and the newest numpy PyPI offers it and runs a smoke script (which
also checks that the compiled fast path loads there), or with
NDSHM_PY_MATRIX=full (`make python-matrix`) the whole suite. Interpreters that are not
installed are skipped, saying so.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest

from conftest import PYPKG, ROOT

FULL_MATRIX = os.environ.get("NDSHM_PY_MATRIX") == "full"
PLATFORM = sysconfig.get_platform().replace("-", "_").replace(".", "_")
VERSION = re.search(r'(?m)^version = "([^"]+)"$', (ROOT / "Cargo.toml").read_text()).group(1)
TESTS = PYPKG / "tests"


def clean_env(**extra):
    """The environment of a user: nothing pointing into the repository or at a library."""
    drop = ("NDSHM_LIBRARY", "PYTHONPATH", "CARGO_TARGET_DIR", "VIRTUAL_ENV", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


def path_without_cargo():
    """PATH minus every directory holding cargo (or rustc): the wheel must not need Rust."""
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not any(os.path.exists(os.path.join(d, t)) for t in ("cargo", "rustc"))]
    path = os.pathsep.join(keep)
    assert shutil.which("cargo", path=path) is None
    return path


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """(sdist, wheel, build log) from `python -m build` on bindings/python."""
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(PYPKG)],
                       capture_output=True, text=True, env=clean_env(), cwd=out, timeout=900)
    log = r.stdout + r.stderr
    errors = [line for line in log.splitlines() if re.match(r"\s*(error|-->)", line)]
    assert r.returncode == 0, "\n".join(errors[:20]) + "\n...\n" + log[-3000:]
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return sdist, wheel, log


def test_sdist_carries_the_rust_sources_and_licenses(dist):
    sdist, _, _ = dist
    assert sdist.name == f"ndshm-{VERSION}.tar.gz"
    top = f"ndshm-{VERSION}/"
    with tarfile.open(sdist) as t:
        names = {n[len(top):] for n in t.getnames()}
        pkg_info = t.extractfile(top + "PKG-INFO").read().decode()
        lic = t.extractfile(top + "LICENSE-MIT").read().decode()
        members = {m.name[len(top):]: m for m in t.getmembers()}
    for f in ["pyproject.toml", "setup.py", "README.md", "LICENSE-MIT", "LICENSE-APACHE",
              "ndshm/__init__.py", "ndshm/_ext.c", "ndshm/py.typed", "rust/Cargo.toml", "rust/Cargo.lock",
              "rust/build.rs", "rust/cbindgen.toml", "rust/README.md", "rust/src/lib.rs",
              "rust/src/ffi/mod.rs", "rust/include/ndshm.h"]:
        assert f in names, f
    # Regular files, not the repository's symbolic links.
    assert members["LICENSE-MIT"].isfile() and members["LICENSE-APACHE"].isfile()
    assert "Copyright (c) the ndshm developers" in lic
    # Every source file of the crate (as git tracks it) is in the sdist.
    if (ROOT / ".git").exists():
        tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "src", "include"],
                                 capture_output=True, text=True, check=True).stdout.split()
    else:  # an unpacked archive of the repository
        tracked = [p.relative_to(ROOT).as_posix() for d in ("src", "include") for p in (ROOT / d).rglob("*")
                   if p.is_file()]
    missing = [f for f in tracked if (ROOT / f).exists() and f"rust/{f}" not in names]
    assert not missing, missing
    # Every package module too (new modules are picked up without touching the build).
    for py in (PYPKG / "ndshm").rglob("*.py"):
        assert py.relative_to(PYPKG).as_posix() in names, py
    assert not any(n.startswith(("rust/target", "tests/")) for n in names)
    assert_metadata(pkg_info)


def assert_metadata(text):
    assert f"\nVersion: {VERSION}\n" in text, "the package version is the crate's"
    assert "\nLicense-Expression: MIT OR Apache-2.0\n" in text
    assert "\nLicense-File: LICENSE-MIT\n" in text and "\nLicense-File: LICENSE-APACHE\n" in text
    assert "\nRequires-Python: >=3.9\n" in text
    assert re.search(r"\nRequires-Dist: numpy>=1\.21\n", text)
    assert re.search(r"\nSummary: .*shared memory", text)
    assert "\nDescription-Content-Type: text/markdown\n" in text
    for v in ("3.9", "3.10", "3.11", "3.12", "3.13"):
        assert f"\nClassifier: Programming Language :: Python :: {v}\n" in text, v
    assert "\nClassifier: Typing :: Typed\n" in text


def test_sdist_builds_outside_the_repository(dist):
    """`python -m build` builds the wheel from the unpacked sdist in a temporary
    directory: the library must come from the sdist's own rust/ copy."""
    _, _, log = dist
    [manifest] = re.findall(r"ndshm: building the Rust library: .* --manifest-path (\S+)", log)
    manifest = pathlib.Path(manifest)
    assert manifest.parts[-2:] == ("rust", "Cargo.toml"), manifest
    assert not manifest.resolve().is_relative_to(ROOT), f"built from the repository: {manifest}"


def test_wheel_tag_contents_and_metadata(dist):
    _, wheel, _ = dist
    # One stable-ABI extension module: one wheel for every CPython >= 3.9 on the platform.
    assert wheel.name == f"ndshm-{VERSION}-cp39-abi3-{PLATFORM}.whl"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = f"ndshm-{VERSION}.dist-info/"
        meta = z.read(info + "METADATA").decode()
        wheel_file = z.read(info + "WHEEL").decode()
        lib = z.read("ndshm/_native/libndshm.so")
        assert "Copyright (c) the ndshm developers" in z.read(info + "licenses/LICENSE-MIT").decode()
        assert "Apache License" in z.read(info + "licenses/LICENSE-APACHE").decode()
    assert "Root-Is-Purelib: false" in wheel_file and f"Tag: cp39-abi3-{PLATFORM}" in wheel_file
    assert lib[:4] == b"\x7fELF" and b"sa_create" in lib
    # The extension, and nothing per-version: no cpython-3XX module beside it.
    assert "ndshm/_ext.abi3.so" in names
    assert not [n for n in names if n.endswith(".so") and "cpython-" in n], names
    assert "ndshm/py.typed" in names
    for py in (PYPKG / "ndshm").rglob("*.py"):
        assert py.relative_to(PYPKG).as_posix() in names, py
    assert not any(n.startswith("tests/") for n in names)
    assert_metadata(meta)


def make_venv(where, python, *requirements, wheel):
    """A fresh venv (no system site packages) with the wheel and the requirements, each
    from PyPI as binary wheels where they have one. Returns its python."""
    subprocess.run([python, "-m", "venv", str(where)], check=True)
    py = str(where / "bin" / "python")
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel),
                        *requirements], capture_output=True, text=True, env=clean_env())
    if r.returncode != 0:
        raise PipFailed(r.stdout + r.stderr)
    return py


class PipFailed(Exception):
    pass


def installed_env():
    return clean_env(NDSHM_TEST_INSTALLED="1", PATH=path_without_cargo())


def run_suite(py, cwd):
    """The binding's tests against the installed package: from a directory outside the
    repository, so nothing on sys.path leads to the source tree."""
    r = subprocess.run([py, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(TESTS)],
                       capture_output=True, text=True, env=installed_env(), cwd=cwd, timeout=900)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    # Only the test that needs cargo, and the Dask example (Dask and its dependencies are
    # too heavy for this venv; the main environment runs it), may skip: a peer package
    # missing from the venv (SharedArray, mypy) would otherwise turn its tests into
    # silent skips.
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert all("without cargo" in s or "Dask is not installed" in s for s in skips), skips
    return out


@pytest.fixture(scope="module")
def wheel_venv(dist, tmp_path_factory):
    """Python 3.11-or-whatever-runs-the-tests with numpy 1.x, the peers and mypy."""
    _, wheel, _ = dist
    d = tmp_path_factory.mktemp("venv-np1")
    return make_venv(d / "venv", sys.executable, "numpy<2", "pytest", "SharedArray", "mypy", wheel=wheel), d


def test_wheel_passes_the_binding_tests_without_cargo(wheel_venv):
    py, d = wheel_venv
    r = subprocess.run([py, "-c", "import numpy, ndshm, ndshm._lib as l; "
                        "print(numpy.__version__, ndshm.__file__, l._library_path(), l.ext.__file__)"],
                       capture_output=True, text=True, env=installed_env(), cwd=d, check=True)
    np_version, module, lib = r.stdout.split()[:3]
    assert np_version.startswith("1."), np_version
    assert module.startswith(str(d)) and lib.startswith(str(d)) and lib.endswith("_native/libndshm.so")
    out = run_suite(py, d)
    assert re.search(r"\d+ passed", out)


# The interpreters of the matrix, and the numpy versions each is tested with: the oldest
# the package claims (1.21, for the Pythons that have wheels of it), the newest 1.x and the
# newest 2.x that PyPI has for that Python (pip chooses; binary wheels only).
MATRIX = [("3.9", "numpy==1.21.*"), ("3.9", "numpy>=2"),
          ("3.10", "numpy<2"), ("3.10", "numpy>=2"),
          ("3.11", "numpy>=2"),
          ("3.12", "numpy<2"), ("3.12", "numpy>=2"),
          ("3.13", "numpy<2"), ("3.13", "numpy>=2")]


def find_python(version):
    """python{version} on PATH, else pyenv's; only one that runs and is that version
    (pyenv's shims exist for versions that are not selected, and then fail)."""
    cands = [shutil.which(f"python{version}")]
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        cands += sorted(str(p) for p in pathlib.Path(root).glob(f"versions/{version}.*/bin/python{version}"))
    for cand in filter(None, cands):
        r = subprocess.run([cand, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() == version:
            return cand
    return None


SMOKE = r"""
import os, subprocess, sys
import numpy as np
import ndshm
import ndshm.compat.sharedarray as sa
from ndshm.compat import cdxcore as cdx

assert ndshm._lib._library_path().endswith("_native/libndshm.so")
assert ndshm._lib.ext is not None, "the compiled fast path did not load"
n = f"ndshm-dist-smoke-{os.getpid()}"
try:
    a = ndshm.create(n, (3, 4), dtype="f4", order="F", full=2.0)
    assert a.flags.f_contiguous and float(a.sum()) == 24.0
    code = "import ndshm, sys; b = ndshm.attach(sys.argv[1], ro=True); print(float(b.sum()))"
    r = subprocess.run([sys.executable, "-c", code, n], capture_output=True, text=True)
    assert r.stdout.strip() == "24.0", r.stderr
    assert ndshm.is_shared(a[1:]) and ndshm.info(n).dims == (3, 4)
    assert any(d.name == "shm://" + n for d in ndshm.list())
    ndshm.delete(n)
    s = sa.create("shm://" + n, np.array([2, 2]), dtype="bool")
    assert sa.attach("shm://" + n).base.name == "shm://" + n
    assert (n.encode(), np.bool_, (2, 2)) in [tuple(d) for d in sa.list()]
    sa.delete(n)
    c = cdx.create_shared_array(n, (2,), np.int64, full=7)
    assert cdx.attach_shared_array(n, validate_shape=[2]).tolist() == [7, 7]
    assert cdx.delete_shared_array(n)
finally:
    ndshm.delete(n, missing_ok=True)
print("ok", sys.version_info[:2], np.__version__)
"""


@pytest.mark.parametrize("version,numpy_req", MATRIX, ids=[f"py{v}-{n}" for v, n in MATRIX])
def test_wheel_on_other_pythons_and_numpys(dist, tmp_path, version, numpy_req):
    python = find_python(version)
    if python is None:
        pytest.skip(f"python{version} is not installed here (not on PATH, not under pyenv)")
    _, wheel, _ = dist
    reqs = [numpy_req, "--only-binary", "numpy"]
    if FULL_MATRIX:
        reqs += ["pytest", "SharedArray", "mypy"]
    try:
        py = make_venv(tmp_path / "venv", python, *reqs, wheel=wheel)
    except PipFailed as e:
        if "No matching distribution found for numpy" in str(e):
            pytest.skip(f"PyPI has no binary numpy wheel matching {numpy_req!r} for Python {version}")
        raise
    if FULL_MATRIX:
        run_suite(py, tmp_path)
    else:
        r = subprocess.run([py, "-c", SMOKE], capture_output=True, text=True, env=installed_env(),
                           cwd=tmp_path, timeout=300)
        assert r.returncode == 0, r.stderr[-4000:]
        assert r.stdout.startswith("ok"), r.stdout
