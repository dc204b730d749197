"""cdxcore's own tests for cdxcore.npshm (tests/test_npshm.py from its PyPI sdist,
downloaded here at test time, never copied into this repository) run against
ndshm.compat.cdxcore: the one import line that names cdxcore.npshm is pointed at the
drop-in, everything else (cdxcore.npio's to_file, cdxcore.subdir) stays the real package.

The arrays go to a private NDSHM_DIR, which also proves the drop-in made them (cdxcore's
own module would have used /dev/shm) and cleans up what cdxcore's tests leave behind.
"""

import os
import re
import subprocess
import sys
import tarfile

import pytest

from conftest import PYPKG, library

cdxcore = pytest.importorskip("cdxcore", reason="pip install cdxcore (make test's python-deps installs it)")

IMPORT = "from cdxcore.npshm import create_shared_array, attach_shared_array, read_shared_array, delete_shared_array"
MISSING = ("ndshm.compat.cdxcore has no read_shared_array yet (it comes with the dataset "
           "issue's file loading)")


def installed_version():
    from importlib.metadata import version

    return version("cdxcore")


@pytest.fixture(scope="module")
def upstream_test(tmp_path_factory):
    """tests/test_npshm.py of the installed cdxcore version's sdist."""
    d = tmp_path_factory.mktemp("cdxcore-sdist")
    v = installed_version()
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"cdxcore=={v}", "-d", str(d)], capture_output=True, text=True)
    assert r.returncode == 0, f"downloading cdxcore's sdist failed: {r.stderr[-2000:]}"
    [sdist] = d.glob("cdxcore-*.tar.gz")
    with tarfile.open(sdist) as t:
        [member] = [m for m in t.getmembers() if m.name.endswith("/tests/test_npshm.py")]
        return t.extractfile(member).read().decode()


def test_cdxcore_own_npshm_tests_pass_against_the_drop_in(upstream_test, tmp_path):
    shm = tmp_path / "shm"
    shm.mkdir()
    env = dict(os.environ, NDSHM_DIR=str(shm), NDSHM_LIBRARY=str(library()), PYTHONPATH=str(PYPKG))
    assert upstream_test.count(IMPORT) == 1, "cdxcore's test file changed its import line"
    probe = "import ndshm.compat.cdxcore as m; print(hasattr(m, 'read_shared_array'))"
    has_read = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                              check=True).stdout.strip() == "True"
    if has_read:
        new_import = IMPORT.replace("cdxcore.npshm", "ndshm.compat.cdxcore")
    else:
        # Only what needs read_shared_array is skipped, at the point where it needs it.
        new_import = (IMPORT.replace("cdxcore.npshm", "ndshm.compat.cdxcore").replace(" read_shared_array,", "")
                      + f"\ndef read_shared_array(*a, **k):\n    raise unittest.SkipTest({MISSING!r})\n"
                      + "import unittest")
    test_file = tmp_path / "test_npshm_on_ndshm.py"
    test_file.write_text(upstream_test.replace(IMPORT, new_import))
    r = subprocess.run([sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider", str(test_file)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    if has_read:
        assert re.search(r"\b2 passed\b", out) and "skipped" not in out, out[-2000:]
    else:
        assert re.search(r"\b1 passed, 1 skipped\b", out), out[-2000:]
        assert MISSING in out and "Test::test_npi SKIPPED" in out, out[-2000:]
    # The drop-in made them: ndshm arrays in NDSHM_DIR, not cdxcore segments in /dev/shm.
    made = sorted(p.name for p in shm.iterdir())
    assert any(m.startswith("test_3d_") for m in made), made
    with open(shm / next(m for m in made if m.startswith("test_3d_")), "rb") as f:
        assert f.read(8) == b"NDSHMARR", "not an ndshm segment (docs/FORMAT.md: the magic)"
