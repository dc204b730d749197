"""A user's script that calls every public function of the package, written as a
strictly typed program would be. tests/test_typing.py runs `mypy --strict` on it (so the
package's annotations must be complete and right for users) and runs it (so it is real).

When you add a public function, class or compat module, call it here: a test checks that
every public name of ndshm, ndshm.compat.* appears in this file.

    python typed_usage.py NAME     (a bare shm name this script may create and delete)
"""

from __future__ import annotations

import os
import pickle
import sys
import typing
from typing import List, Optional, Tuple

import numpy as np
import numpy.typing as npt

import ndshm
import ndshm.compat.cdxcore as cdx
import ndshm.compat.isf as isf
import ndshm.compat.ndsharray as nds
import ndshm.compat.sharedarray as sa


def main(name: str) -> None:
    version: str = ndshm.__version__
    assert version

    # ndshm's own API.
    a: npt.NDArray[np.float64] = ndshm.create(
        "shm://" + name, (2, 3), np.float64, order="F", force=False, sparse=False, populate=False,
        hugepages=False, share="owner", format="ndshm", full=1.5, raise_on_error=True)
    maybe: Optional[npt.NDArray[np.float64]] = ndshm.create(name, 3, raise_on_error=False)
    assert maybe is None, "the name exists"
    b = ndshm.attach(name, True, validate_shape=(2, None), validate_dtype="f8", timeout=1.0,
                     populate=False, allow_other_owner=False, follow_symlinks=False)
    c: Optional[npt.NDArray[np.float64]] = ndshm.attach(name + "-missing", raise_on_error=False)
    assert c is None
    total: float = float(b.sum())
    assert total == 9.0
    shared: bool = ndshm.is_shared(b[1:])
    assert shared
    base: Optional[ndshm.SharedMemoryBase] = ndshm.base_of(b)
    assert base is not None
    label: str = base.name
    addr: int = base.addr
    size: int = base.size
    readonly: bool = base.readonly
    fmt: str = base.format
    assert label == "shm://" + name and addr and size == 48 and readonly and fmt == "v1"
    base.msync(ndshm.MS_SYNC | ndshm.MS_INVALIDATE)
    base.msync(ndshm.MS_ASYNC)
    base.mlock()
    base.munlock()
    desc: ndshm.ArrayDesc = ndshm.info(name)
    dims: Tuple[int, ...] = desc.dims
    alive: Optional[bool] = desc.creator_alive
    pid: Optional[int] = desc.creator_pid
    assert dims == (2, 3) and desc.order == "F" and desc.dtype == np.float64 and alive and pid
    listing: List[ndshm.ArrayDesc] = ndshm.list()
    assert any(d.name == "shm://" + name for d in listing)
    in_dir: List[ndshm.ArrayDesc] = ndshm.list(os.environ.get("NDSHM_DIR", "/dev/shm"))
    assert isinstance(in_dir, list)
    try:
        ndshm.attach(name, validate_shape=(3, 3))
    except ValueError as e:
        message: str = str(e)
        assert "shape" in message
    for exc in (ndshm.FormatError, ndshm.NotReadyError, ndshm.OwnerDiedError):
        err: ndshm.NdshmError = exc("x")
        assert isinstance(err, OSError)
    ndshm.delete(name)
    ndshm.delete(name, missing_ok=True, in_progress=False)

    # SharedArray's API.
    s = sa.create("shm://" + name, np.array([2, 2]), dtype="bool")
    s[0, 0] = True
    t = sa.attach("shm://" + name, ro=True)
    assert t.base is not None and ndshm.base_of(t) is not None
    descs: Tuple[sa.ArrayDesc, ...] = sa.list()
    assert sa.ArrayDesc(name.encode(), np.bool_, (2, 2)) in descs
    flags: int = sa.MS_SYNC | sa.MS_ASYNC | sa.MS_INVALIDATE
    assert flags
    sa.delete(name)

    # cdxcore.npshm's API.
    x = cdx.create_shared_array(name, [4], np.int32, full=7, force=False, track=None, unlink=False)
    y: Optional[npt.NDArray[np.int32]] = cdx.create_shared_array(name, [4], np.int32, raise_on_error=False)
    assert y is None
    z = cdx.attach_shared_array(name, validate_shape=[4], validate_dtype=np.int32, read_only=True)
    w = cdx.attach_shared_array(name + "-missing", raise_on_error=False)
    assert w is None and int(z.sum()) == 28 and cdx.is_shared_array(x)
    gone: bool = cdx.delete_shared_array(name, raise_on_error=True)
    assert gone

    # Datasets: load once per node, save atomically, cdxcore's npio files.
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"{name}.npy")
    np.save(tmp, np.arange(6.0).reshape(3, 2))
    loaded: npt.NDArray[np.float64] = ndshm.load(tmp, name, rows=slice(0, 2), read_only=True)
    again, status = ndshm.load(tmp, name, rows=(0, 2), return_status=True, timeout=5.0)
    assert loaded.shape == (2, 2) and status == "attached" and again.shape == (2, 2)
    ndshm.save(loaded, tmp, rows=(0, 1))
    ndshm.save(name, tmp)
    # To other processes on this node by name: pickles as a reference, not the data.
    ref: ndshm.SharedNDArray = ndshm.by_name(loaded)
    view: ndshm.SharedNDArray = pickle.loads(pickle.dumps(ref[1:]))
    assert view.shape == (1, 2) and ndshm.is_shared(view)
    del loaded, again, ref, view
    ndshm.delete(name)
    npio = tmp + ".npio"
    cdx.to_file(npio, np.arange(4, dtype=np.int64))
    dt, shape = cdx.read_dtype_and_shape(npio)
    assert dt == np.int64 and shape == (4,)
    r = cdx.read_shared_array(npio, name, validate_shape=[4], read_only=True)
    r2, existed = cdx.read_shared_array(npio, name, return_status=True)
    assert int(r.sum()) == 6 and existed and r2.shape == (4,)
    del r, r2
    ndshm.delete(name)
    os.unlink(tmp)
    os.unlink(npio)

    # Live data: publish, snapshots, waiting, shape changes, the lock.
    live: npt.NDArray[np.float64] = ndshm.create(name, (3,), capacity=4096)
    with ndshm.writing(live) as wr:
        live[:] = 1.0
    written: ndshm.Write = wr
    assert written.version == 1 and not written.repair
    lbase = ndshm.base_of(live)
    assert lbase is not None
    with lbase.write():
        live[:] = 2.0
    v: int = ndshm.publish(live, np.zeros((2, 2), np.int32), grow=False)
    snap: npt.NDArray[np.int32] = ndshm.read_snapshot(live, timeout=1.0)
    snap2, v2 = ndshm.read_snapshot(live, np.empty((2, 2), np.int32), return_version=True)
    assert snap.shape == (2, 2) and snap2.shape == (2, 2) and v == v2 == ndshm.version(live) == 3
    token: int = ndshm.read_begin(live, timeout=1.0)
    consistent: bool = ndshm.read_valid(live, token)
    assert consistent
    try:
        ndshm.wait(live, v, timeout=0.001)
    except TimeoutError:
        pass
    lk: ndshm.Lock = ndshm.lock(live, timeout=1.0)
    with lk:
        died: bool = lk.owner_died
        assert not died
    got: bool = lk.acquire(blocking=True, timeout=1.0)
    assert got
    lk.release()
    with lbase.lock(timeout=1.0):
        pass
    for live_exc in (ndshm.StaleError, ndshm.TornReadError):
        assert issubclass(live_exc, ndshm.NdshmError)
    del live, lbase, snap, snap2
    ndshm.delete(name)

    # ndsharray's API.
    writer = nds.NdShArray(name, np.arange(4.0), r_w="w")
    reader = nds.NdShArray(name, r_w="r")
    fresh, frame = reader.read()
    assert fresh and frame.shape == (4,) and writer.name == name and reader.access == "r"
    writer.write(np.ones((2, 3), np.uint8))
    assert reader.read()[1].shape == (2, 3) and reader.read_time_ms >= 0 and reader.is_valid
    assert writer.ndarray_mmap_name == name and np.dtype(nds.supported_types[0]) == np.int8
    del writer, reader
    ndshm.delete(name)

    # Growing along axis 0.
    series: npt.NDArray[np.float64] = ndshm.create(name, (0, 3))
    series = ndshm.append(series, np.ones((2, 3)))
    series = ndshm.resize(series, 4)
    same: npt.NDArray[np.float64] = ndshm.refresh(series)
    assert series.shape == same.shape == (4, 3)
    del series, same
    ndshm.delete(name)

    # The array store.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, ndshm.Store(tmp, readonly=False, format="ndshm") as st:
        st.save("x", np.arange(6.0).reshape(2, 3))
        n_rows: int = st.append("x", np.ones((1, 3)))
        entries: typing.List[ndshm.StoreEntry] = st.list()
        mapped: npt.NDArray[typing.Any] = st.load("x", mode="memmap", rows=(0, 2))
        private: npt.NDArray[typing.Any] = st["x"]
        in_shm: npt.NDArray[typing.Any] = st.load("x", "shm")
        assert n_rows == 3 and entries[0].name == "x" and "x" in st and mapped.shape == (2, 3)
        assert private.shape == in_shm.shape == (3, 3)
        del mapped, private, in_shm
        copies: int = st.unload("x")
        assert copies == 1
        st.delete("x")

    # ISF's SharedNumpyStore and its module functions.
    with tempfile.TemporaryDirectory() as wd:
        store = isf.SharedNumpyStore(wd)
        store.save(np.arange(6.0).reshape(2, 3), "v")
        store.append_save(np.ones((1, 3)), "v", autoflush=False)
        store.flush()
        store.update()
        isf_bytes: int = store.get_expected_file_length("v")
        mm: npt.NDArray[typing.Any] = store.load("v", mode="memmap", start_row=0, end_row=2)
        shared_v: npt.NDArray[typing.Any] = store.load("v", "shared_memory", allow_create_shm=True)
        assert isf_bytes == 72 and mm.shape == (2, 3) and shared_v.shape == (3, 3)
        try:
            store.load("v", mode="typo")
        except isf.ModeError:
            pass
        for isf_exc in (isf.StoreNameError, isf.UnsupportedArrayError, isf.NotInStoreError,
                        isf.AppendMismatchError, isf.NotInSharedMemoryError):
            assert issubclass(isf_exc, ValueError)
        store.close()
        path = os.path.join(wd, "v__3_3__float64")
        disk: npt.NDArray[typing.Any] = isf.memmap_from_disk(path, start_row=1)
        shm_a, a_arr = isf.shared_array_from_disk(path, name=name, end_row=1)
        shm_b, b_arr = isf.shared_array_from_shared_mem_name(name, shape=(1, 3), dtype=np.float64)
        raw: memoryview = shm_b.buf
        assert shm_a.name == name and shm_b.size == 24 and len(raw) == 24 and disk.shape == (2, 3)
        assert a_arr.shape == b_arr.shape == (1, 3)
        del raw
        shm_b.close()
        shm_a.unlink()
        shm_c, c_arr = isf.shared_array_from_numpy(np.zeros(2), name)
        attached = isf.SharedMemory(shm_c.name)
        assert attached.size == c_arr.nbytes == 16
        attached.unlink()
    with isf.Uninterruptible():
        pass


if __name__ == "__main__":
    main(sys.argv[1])
    print("typed usage ok")
