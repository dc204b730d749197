"""The Python face of the reliability rules: other users' arrays and symbolic links need
an opt-in, in-progress arrays are deleted only on request, and messages name the Python
keyword that lifts an error (not the C flag)."""

import os
import pathlib
import shutil
import struct
import subprocess
import tempfile
import zlib

import numpy as np
import pytest

import ndshm
from conftest import LIBRARY, ROOT

OTHER_UID = 54321


@pytest.fixture
def tool_for_anyone(tmp_path_factory):
    """tests/c/sa_tool.c compiled where a second user can run it (pytest's own temporary
    directories and this Python are private to root)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="ndshm-anyone-"))
    try:
        os.chmod(d, 0o755)
        lib = pathlib.Path(LIBRARY).resolve()
        soname = subprocess.run(
            ["readelf", "-d", str(lib)], capture_output=True, text=True, check=True
        ).stdout.split("Library soname: [")[1].split("]")[0]
        for link in ("libndshm.so", soname):
            shutil.copy(lib, d / link)
        exe = d / "sa_tool"
        subprocess.run(
            ["cc", "-std=c11", f"-I{ROOT / 'include'}", str(ROOT / "tests/c/sa_tool.c"),
             f"-L{d}", "-lndshm", f"-Wl,-rpath,{d}", "-o", str(exe)],
            check=True,
        )
        os.chmod(exe, 0o755)
        yield exe
    finally:
        shutil.rmtree(d)


@pytest.mark.skipif(os.geteuid() != 0, reason="running a process as a second user needs root")
def test_other_users_arrays_need_allow_other_owner(uname, tool_for_anyone):
    n = uname("other")
    r = subprocess.run(
        [str(tool_for_anyone), "create-bytes", n, "4", str(ndshm._lib.SA_SHARE_ALL), "7"],
        capture_output=True, text=True, user=OTHER_UID, group=OTHER_UID, cwd="/",
    )
    assert r.stdout.startswith("SA_OK"), r.stdout + r.stderr
    with pytest.raises(PermissionError) as e:
        ndshm.attach(n)
    msg = str(e.value)
    assert f"uid {OTHER_UID}" in msg and "allow_other_owner=True" in msg, msg
    assert "SA_ALLOW_OTHER_OWNER" not in msg, msg
    a = ndshm.attach(n, allow_other_owner=True)
    assert a.tolist() == [7, 7, 7, 7]


def test_symlinks_need_follow_symlinks(tmp_path):
    real = f"file://{tmp_path / 'real'}"
    ndshm.create(real, (3,), "f8")[:] = 1.5
    os.symlink(tmp_path / "real", tmp_path / "link")
    link = f"file://{tmp_path / 'link'}"
    with pytest.raises(PermissionError, match="follow_symlinks=True"):
        ndshm.attach(link)
    assert ndshm.attach(link, follow_symlinks=True).tolist() == [1.5] * 3
    with pytest.raises(ndshm.FormatError, match="symbolic link"):
        ndshm.delete(link)
    assert (tmp_path / "real").exists()


def test_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "f")
    with pytest.raises(ndshm.FormatError, match="FIFO"):
        ndshm.attach(f"file://{tmp_path / 'f'}", timeout=5)


def initialising_segment(path, creator_pid):
    """A v1 header still marked INITIALISING, written as the format specifies
    (docs/FORMAT.md), by `creator_pid`."""
    page = bytearray(8192 + 8)
    page[0:8] = b"NDSHMARR"
    struct.pack_into("=HHIII", page, 8, 1, 0, 0x01020304, 4096, 4096)
    struct.pack_into("=QQQQQ", page, 24, 4096, 4096, 8192, 8, 8)
    struct.pack_into("=iI", page, 64, 11, 8)  # float64
    page[72:75] = np.dtype("f8").str.encode()
    struct.pack_into("=II", page, 80, 0, 1)
    struct.pack_into("=q", page, 88, 1)
    struct.pack_into("=i", page, 344, creator_pid)
    struct.pack_into("=I", page, 1020, zlib.crc32(bytes(page[:1020])))
    struct.pack_into("=I", page, 1024, 0)  # INITIALISING
    path.write_bytes(bytes(page))


def test_in_progress_arrays_are_deleted_only_on_request(tmp_path):
    creator = subprocess.Popen(["sleep", "30"])
    try:
        p = tmp_path / "loading"
        initialising_segment(p, creator.pid)
        name = f"file://{p}"
        with pytest.raises(ndshm.NotReadyError, match=f"pid {creator.pid}"):
            ndshm.attach(name)
        with pytest.raises(ndshm.NotReadyError, match="in_progress=True"):
            ndshm.delete(name)
        assert p.exists()
        ndshm.delete(name, in_progress=True)
        assert not p.exists()
    finally:
        creator.kill()
        creator.wait()


def test_dead_creator_is_owner_died_error(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    p = tmp_path / "abandoned"
    initialising_segment(p, gone.pid)
    with pytest.raises(ndshm.OwnerDiedError, match="died"):
        ndshm.attach(f"file://{p}", timeout=30)
    ndshm.delete(f"file://{p}")  # abandoned: no in_progress needed


def test_force_message_names_the_keyword(uname):
    n = uname("exists")
    ndshm.create(n, (1,))
    with pytest.raises(FileExistsError, match=r"pass force=True"):
        ndshm.create(n, (1,))
