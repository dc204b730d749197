"""`pip install ./bindings/python` builds and bundles the library: no environment
variable needed afterwards. Also runs the README's plain-ctypes example."""

import os
import re
import subprocess
import sys
import venv

import pytest

from conftest import INSTALLED, ROOT


@pytest.mark.skipif(INSTALLED, reason="testing an installed wheel on purpose without cargo, which "
                                      "`pip install ./bindings/python` needs")
def test_pip_install_bundles_the_library(tmp_path, uname):
    env_dir = tmp_path / "venv"
    # System site packages provide numpy; pip still builds ndshm itself in isolation.
    venv.EnvBuilder(with_pip=True, system_site_packages=True).create(env_dir)
    py = env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("NDSHM_LIBRARY", "PYTHONPATH")}
    r = subprocess.run([py, "-m", "pip", "install", "-q", str(ROOT / "bindings" / "python")],
                       capture_output=True, text=True, env=clean)
    assert r.returncode == 0, r.stderr[-3000:]
    n = uname()
    code = ("import ndshm, sys; p = ndshm._lib._library_path(); "
            "a = ndshm.create(sys.argv[1], (2, 2), full=3.0); print(p, a.sum()); ndshm.delete(sys.argv[1])")
    r = subprocess.run([py, "-c", code, n], capture_output=True, text=True, env=clean, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    path, total = r.stdout.split()
    assert path.startswith(str(env_dir)) and path.endswith("_native/libndshm.so"), path
    assert float(total) == 12.0


def test_readme_plain_ctypes_example(uname):
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n# plain ctypes\n(.*?)```", readme, re.S).group(1)
    n = uname()
    r = subprocess.run([sys.executable, "-c", block.replace("shm://example", "shm://" + n)],
                       capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=""), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "shape (2, 3) sum 15.0"
