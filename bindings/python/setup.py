"""Builds the ndshm Rust library with cargo and bundles it into the package.

`pip install ./bindings/python` needs only Rust (cargo) and Python: the library is
built from the repository's Cargo.toml (two directories up) in release mode and copied
to ndshm/_native/libndshm.so, where ndshm/_lib.py loads it with ctypes.
"""

import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "..", "..", "Cargo.toml")


class BuildWithCargo(build_py):
    def run(self):
        super().run()
        if not os.path.exists(MANIFEST):
            sys.exit(
                "ndshm: the Rust sources (../../Cargo.toml) are not next to this package; "
                "install from a checkout of the repository: pip install ./bindings/python"
            )
        cargo = os.environ.get("CARGO", "cargo")
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(HERE, "..", "..", "target"))
        cmd = [cargo, "build", "--release", "--lib", "--manifest-path", MANIFEST]
        try:
            subprocess.check_call(cmd, env={**os.environ, "CARGO_TARGET_DIR": target})
        except FileNotFoundError:
            sys.exit("ndshm: building the library needs Rust's cargo on PATH (https://rustup.rs)")
        built = os.path.join(target, "release", "libndshm.so")
        dest = os.path.join(self.build_lib, "ndshm", "_native")
        os.makedirs(dest, exist_ok=True)
        shutil.copy2(built, os.path.join(dest, "libndshm.so"))


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithCargo}, distclass=BinaryDistribution)
