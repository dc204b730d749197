"""The custom build steps of the ndshm Python package (the rest is in pyproject.toml).

The package is pure Python plus the Rust library ``libndshm.so``, which it loads with
ctypes. So the build is setuptools with three small steps, not a Rust-extension
backend (maturin and setuptools-rust build a Rust crate *as* a Python extension module;
ours is a plain C-ABI library that C, Fortran and Julia load too):

* ``build_py`` runs ``cargo build --release --lib --locked`` and copies the library to
  ``ndshm/_native/libndshm.so``, where ``ndshm/_lib.py`` finds it.
* ``sdist`` adds the Rust sources the library needs (Cargo.toml, Cargo.lock, build.rs,
  cbindgen.toml, src/, include/, the crate README and licenses) under ``rust/``, so an
  sdist builds anywhere with Rust and Python, outside the repository.
* ``bdist_wheel`` tags the wheel ``py3-none-<platform>``: it holds no per-Python
  extension, so one wheel serves every supported CPython.

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

from setuptools import setup
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
    """py3-none-<platform>: the library is loaded with ctypes, nothing is compiled
    against a particular Python, so every CPython >= 3.9 on the platform can use it."""

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(
    version=crate_version(),
    cmdclass={"build_py": BuildWithCargo, "sdist": SdistWithRust, "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
)
