"""The custom build steps of the ndshm Python package (the rest is in pyproject.toml).

The package is Python plus the Rust library ``libndshm.so``, which it loads with
ctypes, plus one small C extension, ``ndshm._ext``, the fast path of the hot calls. So
the build is setuptools with a few small steps, not a Rust-extension backend (maturin and
setuptools-rust build a Rust crate *as* a Python extension module; ours is a plain C-ABI
library that C, Fortran and Julia load too):

* ``build_py`` runs ``cargo build --release --lib --locked`` and copies the library to
  ``ndshm/_native/libndshm.so``, where ``ndshm/_lib.py`` finds it.
* ``build_ext`` compiles ``ndshm/_ext.c`` for the stable ABI (see below).
* ``sdist`` adds the Rust sources the library needs (Cargo.toml, Cargo.lock, build.rs,
  cbindgen.toml, src/, include/, the crate README and licenses) under ``rust/``, so an
  sdist builds anywhere with Rust, Python and a C compiler, outside the repository.
* ``bdist_wheel`` tags the wheel ``cp39-abi3-<platform>``: its one extension module
  uses only the limited C API of CPython 3.9, so one wheel serves every CPython >= 3.9.

Why a C extension, and why built this way (measured in docs/BENCHMARKS.md): through
ctypes every foreign call costs ~0.5 µs and building a numpy array over the mapping
from Python (``__array_interface__``) 2-3 µs, which kept attach above SharedArray's and
the live-data round trip at 7x the numpy floor. The extension makes the array with
numpy's C API (``PyArray_NewFromDescr`` + ``PyArray_SetBaseObject``) and calls the
library directly. It is a thin layer over include/ndshm.h: it does not link the
library but looks its functions up in the very copy ctypes loaded (so one library
instance, one thread-local last error), and errors go through the same
``ndshm._lib.error_for`` as the ctypes path. Without it (not built, failing to load, or
``NDSHM_NO_EXT=1``) the package runs on ctypes alone, as before.

* cffi in API mode was the other candidate: it adds a run-time dependency
  (``_cffi_backend``), its calls still pass through cffi's type conversion, and it has
  no way to make a numpy array with a base object, so the array would still be built
  from Python: the part that costs most.
* The stable ABI (``Py_LIMITED_API`` = 3.9, wheel tag ``cp39-abi3``): one build for
  CPython 3.9-3.13 and later, as the py3 wheel was. Its limits are harmless here:
  ``METH_FASTCALL`` is stable only from 3.10, so the functions take ``METH_VARARGS``
  (a tuple from the interpreter's free list; measured within noise); the buffer protocol
  is stable only from 3.11, which is why numpy's C API and not ``PyObject_GetBuffer``
  reads arrays.
* numpy's headers support ``Py_LIMITED_API`` (numpy >= 2 guards what is not limited-API
  clean and its array accessors are functions of its C-API table or inline reads of
  the array struct, which is part of numpy's ABI). Built against numpy >= 2 with
  ``NPY_TARGET_VERSION`` = 1.21, the module runs with numpy 1.21 to 2.x: numpy's own
  rule for supporting both (``import_array`` checks it at import, with numpy's
  message). Hence numpy >= 2 in pyproject.toml's build requirements: only for the
  headers, not a run-time requirement (that stays numpy >= 1.21). Hand-declaring numpy's
  C-API table instead would avoid the build requirement but copy numpy's ABI by hand.

The Rust sources are ``rust/`` in an unpacked sdist, else the repository two directories
up (``pip install ./bindings/python`` from a checkout). The package version is the
crate's, read from that Cargo.toml, so the two cannot drift apart.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.dist import Distribution

try:  # setuptools >= 70.1 carries bdist_wheel; pyproject.toml requires a newer one
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - only with an older setuptools outside pip
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent

# What `cargo build --lib` needs (build.rs reads cbindgen.toml and src/ffi; Cargo.toml
# names README.md as the crate's readme), plus the header and the licenses.
RUST_FILES = ["Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml", "README.md",
              "LICENSE-MIT", "LICENSE-APACHE"]
RUST_DIRS = ["src", "include"]


def rust_root():
    """The directory holding the ndshm crate: rust/ (sdist) or ../.. (checkout)."""
    for d in (HERE / "rust", HERE.parent.parent):
        manifest = d / "Cargo.toml"
        if manifest.is_file() and re.search(r'(?m)^name = "ndshm"$', manifest.read_text()):
            return d
    sys.exit(
        "ndshm: the Rust sources are missing: expected rust/Cargo.toml (in an sdist) or "
        f"{HERE.parent.parent / 'Cargo.toml'} (in a checkout of the repository)"
    )


def workspace_members(root):
    """The [workspace] members named in Cargo.toml (plain paths, as this repository
    writes them; a glob would need cargo metadata)."""
    m = re.search(r"(?ms)^\[workspace\].*?^members\s*=\s*\[(.*?)\]", (root / "Cargo.toml").read_text())
    members = re.findall(r'"([^"]+)"', m.group(1)) if m else []
    return [p for p in members if p != "."]


def crate_version():
    text = (rust_root() / "Cargo.toml").read_text()
    return re.search(r'(?m)^version = "([^"]+)"$', text).group(1)


class BuildWithCargo(build_py):
    """Builds libndshm.so with cargo and puts it into the package."""

    def run(self):
        super().run()
        root = rust_root()
        cargo = os.environ.get("CARGO", "cargo")
        target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
        # --locked: the exact dependency versions the repository tested (Cargo.lock).
        cmd = [cargo, "build", "--release", "--lib", "--locked", "--manifest-path", str(root / "Cargo.toml")]
        print(f"ndshm: building the Rust library: {' '.join(cmd)}", flush=True)
        try:
            subprocess.check_call(cmd, env={**os.environ, "CARGO_TARGET_DIR": str(target)})
        except FileNotFoundError:
            sys.exit("ndshm: building the library needs Rust's cargo on PATH (https://rustup.rs)")
        dest = Path(self.build_lib) / "ndshm" / "_native"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target / "release" / "libndshm.so", dest / "libndshm.so")
        # The release profile keeps line tables for Rust developers (5 MB); the package
        # needs none of it. Stripping the copy leaves cargo's own build untouched.
        if shutil.which("strip"):
            subprocess.check_call(["strip", "--strip-debug", str(dest / "libndshm.so")])


class BuildExtWithHeaders(build_ext):
    """Compiles ndshm/_ext.c with the library's header (from the Rust sources) and
    numpy's (from the numpy >= 2 the build requirements install)."""

    def finalize_options(self):
        super().finalize_options()
        try:
            import numpy
        except ImportError:
            sys.exit("ndshm: building the extension needs numpy >= 2 (its C headers); "
                     "pip installs it for the build (pyproject.toml)")
        if int(numpy.__version__.split(".")[0]) < 2:
            # numpy 1.x headers would make a module that numpy 2 refuses to import.
            sys.exit(f"ndshm: building the extension needs numpy >= 2's headers, found numpy "
                     f"{numpy.__version__} (build with pip's build isolation, or install numpy >= 2)")
        for ext in self.extensions:
            ext.include_dirs += [str(rust_root() / "include"), numpy.get_include()]


class SdistWithRust(sdist):
    """Adds the Rust sources under rust/ (from the checkout, or from rust/ when
    re-packing an sdist)."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        root = rust_root()
        out = Path(base_dir) / "rust"
        for f in RUST_FILES:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / f, out / f)
        # Cargo loads every workspace member's manifest (and needs its targets) even to
        # build the library alone: members come with their Cargo.toml, build.rs and src/.
        dirs = list(RUST_DIRS)
        for member in workspace_members(root):
            for f in ("Cargo.toml", "build.rs"):
                if (root / member / f).is_file():
                    (out / member).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(root / member / f, out / member / f)
            dirs.append(f"{member}/src")
        for d in dirs:
            # Editor backups and hidden files are no source.
            shutil.copytree(root / d, out / d, ignore=shutil.ignore_patterns(".*", "*~", "*.orig", "*.rej"))


class BinaryDistribution(Distribution):
    """The wheel carries a native library: it is platform-specific (platlib)."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """cp39-abi3-<platform>: the library is loaded with ctypes and the one extension
    module is built for the stable ABI of CPython 3.9, so every CPython >= 3.9 on the
    platform can use the wheel."""

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "cp39", "abi3", plat


EXTENSION = Extension(
    "ndshm._ext",
    ["ndshm/_ext.c"],
    py_limited_api=True,  # the file name _ext.abi3.so; _ext.c defines Py_LIMITED_API itself
    libraries=["dl"],  # dlsym (in libc itself from glibc 2.34)
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
)

setup(
    version=crate_version(),
    ext_modules=[EXTENSION],
    cmdclass={"build_py": BuildWithCargo, "build_ext": BuildExtWithHeaders, "sdist": SdistWithRust,
              "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
)
