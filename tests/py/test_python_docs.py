"""`make docs`: the Python API reference generated from the docstrings by pdoc (the same
command as the Makefile's), with every public module and the docstrings' sections."""

import os
import re
import subprocess
import sys

import pytest

from conftest import PYPKG, ROOT, library

pytest.importorskip("pdoc", reason="pip install pdoc (make test's python-deps installs it)")


def test_api_reference_builds(tmp_path):
    make = (ROOT / "Makefile").read_text()
    cmd = re.search(r"\$\(PYTHON\) -m pdoc (.*) -o target/doc/python (.*)\n", make)
    assert cmd, "the docs target's pdoc command"
    args = cmd.group(1).split() + ["-o", str(tmp_path)] + cmd.group(2).split()
    env = dict(os.environ, NDSHM_LIBRARY=str(library()), PYTHONPATH=str(PYPKG))
    r = subprocess.run([sys.executable, "-m", "pdoc", *args], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "Warn" not in r.stderr, r.stderr
    for page in ["index.html", "ndshm.html", "ndshm/compat.html", "ndshm/compat/sharedarray.html",
                 "ndshm/compat/cdxcore.html"]:
        assert (tmp_path / page).is_file(), page
    html = (tmp_path / "ndshm.html").read_text()
    text = re.sub(r"<[^>]+>", "", html)
    for want in ["Create a new shared array", "Raises:", "FileExistsError", "Attach an existing array",
                 "SharedMemoryBase", "ArrayDesc"]:
        assert want in html or want in text, want
