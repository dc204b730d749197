#!/usr/bin/env python3
"""Growing arrays and the array store, from Python: appending 1,000,000 rows of 16
float64 one row at a time and in batches of 1,000 to an ndshm.Store, against appending to
a Python list then ``np.array``, and against ISF's ``SharedNumpyStore.append_save``
(ISF does not install from a package index, so its method is reimplemented faithfully
below from its source: look up the file, open it, seek, ``tofile``, then rename it to
the new shape inside its ``Uninterruptible`` signal guard; its two diagnostic ``print``
calls per append are left out, which only flatters ISF). Then loading a row range:
ndshm's store (mapped in place, and copied) against ``numpy.load(mmap_mode='r')``
slicing and ISF's ``load`` (``np.memmap`` / ``np.fromfile`` of the raw file).

Prints one table with the time per row (the first and the last 100,000 rows, to show
that it does not grow with the length), bandwidths, and the ratios the issue asks for;
--write FILE replaces the section between <!-- store:start --> and <!-- store:end -->.

    python3 bench/store_bench.py [--quick] [--write docs/BENCHMARKS.md]
"""

import os
import pathlib
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = "--quick" in sys.argv
ROWS = 200_000 if QUICK else 1_000_000
WIDTH = 16
BATCH = 1000
WINDOW = 100_000 if not QUICK else 20_000
ISF_ROWS = 20_000 if QUICK else 100_000


def build():
    subprocess.run(["cargo", "build", "-q", "--release", "--lib", "--manifest-path", str(ROOT / "Cargo.toml")],
                   check=True)
    os.environ.setdefault("NDSHM_LIBRARY", str(ROOT / "target" / "release" / "libndshm.so"))
    sys.path.insert(0, str(ROOT / "bindings" / "python"))


class _Uninterruptible:
    """ISF's signal guard around its renames (SIGINT and SIGTERM ignored inside)."""

    def __enter__(self):
        self.old = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.old[0])
        signal.signal(signal.SIGTERM, self.old[1])


class IsfAppend:
    """ISF's ``append_save(arr, name, autoflush=True)`` on an existing array, as its
    source does it (metadata from the file name, the expected length, open 'r+b', seek,
    ``tofile``, a pending rename, ``flush``)."""

    def __init__(self, d, name, first):
        import numpy as np

        self.d, self.name = d, name
        self.files = {name: f"{name}__{'_'.join(map(str, first.shape))}__{first.dtype.name}"}
        np.ascontiguousarray(first).tofile(os.path.join(d, self.files[name]))
        self.pending = {}

    def _meta(self, name):
        import numpy as np

        fname = self.files[name]
        _, dims, dtype = fname.split("__")
        return fname, tuple(int(x) for x in dims.split("_")), np.dtype(dtype)

    def append_save(self, arr, name):
        assert name != "Loader.pickle" and "__" not in name
        fname, shape, dtype = self._meta(name)
        path = os.path.join(self.d, fname)
        if len(shape) != len(arr.shape) or shape[1:] != arr.shape[1:]:
            raise ValueError("Incompatible dimensions for appending arrays.")
        new_shape = (shape[0] + arr.shape[0],) + shape[1:]
        new_fname = f"{name}__{'_'.join(map(str, new_shape))}__{dtype.name}"
        last = int(dtype.itemsize * int(__import__('numpy').prod(shape)))  # get_expected_file_length
        with open(path, "r+b") as f:
            f.seek(last)
            arr.tofile(f)
        self.pending[fname] = name, new_fname
        with _Uninterruptible():  # flush()
            for old in list(self.pending):
                n, new = self.pending.pop(old)
                os.rename(os.path.join(self.d, old), os.path.join(self.d, new))
                self.files[n] = new


def per_row(fn, rows, window):
    """Runs fn(i) for i in range(rows); returns (total s, first-window s/row, last-window s/row)."""
    t0 = time.perf_counter()
    first = last = None
    for i in range(rows):
        if i == window:
            first = (time.perf_counter() - t0) / window
        if i == rows - window:
            t_last = time.perf_counter()
        fn(i)
    end = time.perf_counter()
    last = (end - t_last) / window
    return end - t0, first, last


def main():
    build()
    import numpy as np

    import ndshm

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ndshm-store-bench-", dir="/dev/shm"))
    results = {}
    try:
        row = np.ones((1, WIDTH))
        batch = np.ones((BATCH, WIDTH))
        # -- one row at a time
        s = ndshm.Store(tmp / "ndshm")
        tot, first, last = per_row(lambda i: s.append("x", row), ROWS, WINDOW)
        results["ndshm row"] = (tot / ROWS, first, last)
        # -- batches
        t0 = time.perf_counter()
        for _ in range(ROWS // BATCH):
            s.append("y", batch)
        dt = time.perf_counter() - t0
        results["ndshm batch"] = dt / ROWS
        results["ndshm batch GB/s"] = ROWS * WIDTH * 8 / dt / 1e9
        # memcpy bandwidth of the same bytes, for the ratio: copies into a preallocated
        # array of the final size (its pages touched once before, as the store's are).
        dst = np.empty((ROWS, WIDTH))
        dst[:] = 0
        t0 = time.perf_counter()
        for k in range(ROWS // BATCH):
            dst[k * BATCH:(k + 1) * BATCH] = batch
        dt_copy = time.perf_counter() - t0
        results["memcpy GB/s"] = ROWS * WIDTH * 8 / dt_copy / 1e9
        del dst
        # The floor of growing a file on tmpfs: write() of the same batches into a new
        # file (the kernel allocates and zeroes each 4 KiB page as it goes).
        fd = os.open(tmp / "floor", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        t0 = time.perf_counter()
        for _ in range(ROWS // BATCH):
            os.write(fd, batch)
        dt_floor = time.perf_counter() - t0
        os.close(fd)
        os.unlink(tmp / "floor")
        results["floor GB/s"] = ROWS * WIDTH * 8 / dt_floor / 1e9
        # -- Python list then np.array
        lst = []
        r1 = np.ones(WIDTH)
        tot, first, last = per_row(lambda i: lst.append(r1), ROWS, WINDOW)
        t0 = time.perf_counter()
        arr = np.array(lst)
        conv = time.perf_counter() - t0
        results["list row"] = ((tot + conv) / ROWS, first, last)
        del lst, arr
        # -- ISF's append_save
        (tmp / "isf").mkdir()
        isf = IsfAppend(str(tmp / "isf"), "x", row)
        tot, first, last = per_row(lambda i: isf.append_save(row, "x"), ISF_ROWS, min(WINDOW, ISF_ROWS // 5))
        results["isf row"] = (tot / ISF_ROWS, first, last)
        t0 = time.perf_counter()
        for _ in range(max(1, ISF_ROWS // BATCH)):
            isf.append_save(batch, "x")
        results["isf batch"] = (time.perf_counter() - t0) / (max(1, ISF_ROWS // BATCH) * BATCH)

        # -- loading a row range: rows [40%, 50%) of the 1M-row array, touched (summed)
        lo, hi = ROWS * 4 // 10, ROWS // 2
        full = s.load("x", "memory")
        np.save(tmp / "x.npy", full)
        # ISF's store holding the same array (as its save writes it).
        shape, dtype = full.shape, full.dtype
        isf_path = str(tmp / "isf" / f"big__{shape[0]}_{shape[1]}__float64")
        full.tofile(isf_path)
        del full
        loads = {
            "ndshm memmap": lambda: s.load("x", rows=(lo, hi)).sum(),
            "ndshm memory": lambda: s.load("x", "memory", rows=(lo, hi)).sum(),
            "numpy.load mmap slice": lambda: np.load(tmp / "x.npy", mmap_mode="r")[lo:hi].sum(),
            "ISF load memmap": lambda: np.memmap(isf_path, dtype=dtype, mode="r", offset=lo * WIDTH * 8,
                                                 shape=(min(hi, shape[0]) - lo, WIDTH), order="C").sum(),
            "ISF load memory": lambda: np.fromfile(isf_path, offset=lo * WIDTH * 8,
                                                   count=(min(hi, shape[0]) - lo) * WIDTH,
                                                   dtype=dtype).reshape(-1, WIDTH).sum(),
        }
        for k, f in loads.items():
            times = []
            for _ in range(7):
                t0 = time.perf_counter()
                f()
                times.append(time.perf_counter() - t0)
            results[k] = sorted(times)[3]
        s.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, lo, hi)


def report(r, lo, hi):
    us = lambda x: f"{x * 1e6:.2f} µs"  # noqa: E731
    ms = lambda x: f"{x * 1e3:.2f} ms"  # noqa: E731
    lines = [
        f"Command: `make bench-store` (`python3 bench/store_bench.py`{' --quick' if QUICK else ''}), machine: "
        f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}; store and files in /dev/shm.",
        "",
        f"Appending {ROWS:,} rows of {WIDTH} float64 (ISF: {ISF_ROWS:,} rows, per row it does not depend on the "
        "length):",
        "",
        "| method | per row (all) | first window | last window |",
        "|---|---|---|---|",
    ]
    for k, name in (("ndshm row", "ndshm `Store.append`, one row per call"),
                    ("list row", "Python list `append`, then `np.array`"),
                    ("isf row", "ISF `append_save`, one row per call")):
        tot, first, last = r[k]
        lines.append(f"| {name} | {us(tot)} | {us(first)} | {us(last)} |")
    lines += [
        f"| ndshm `Store.append`, batches of {BATCH} | {us(r['ndshm batch'])} | | |",
        f"| ISF `append_save`, batches of {BATCH} | {us(r['isf batch'])} | | |",
        "",
        f"Windows: the first and the last {WINDOW:,} rows (ISF: {min(WINDOW, ISF_ROWS // 5):,}).",
        "",
        f"Batch bandwidth: ndshm {r['ndshm batch GB/s']:.2f} GB/s; memcpy of the same batches into a "
        f"preallocated, resident array {r['memcpy GB/s']:.2f} GB/s; `write()` of them into a new tmpfs file "
        f"(the kernel's floor for growing a file: each 4 KiB page allocated and zeroed) "
        f"{r['floor GB/s']:.2f} GB/s, so ndshm / floor = {r['ndshm batch GB/s'] / r['floor GB/s']:.2f} "
        "(ndshm also reserves the pages ahead, so a full filesystem is an error, never a SIGBUS).",
        "",
        f"Loading rows [{lo:,}, {hi:,}) ({(hi - lo) * WIDTH * 8 / 1e6:.1f} MB) and summing them (median of 7):",
        "",
        "| method | time |",
        "|---|---|",
    ]
    for k in ("ndshm memmap", "numpy.load mmap slice", "ISF load memmap", "ndshm memory", "ISF load memory"):
        lines.append(f"| {k} | {ms(r[k])} |")
    growth = r["ndshm row"][2] / r["ndshm row"][1]
    speedup = r["isf row"][0] / r["ndshm row"][0]
    bw = r["ndshm batch GB/s"] / r["memcpy GB/s"]
    lines += [
        "",
        "Targets:",
        "",
        f"- {'met' if growth <= 1.5 else 'MISSED'}: time per row does not grow with the length: last / first "
        f"window {growth:.2f} (target ≤ 1.5, i.e. flat within noise)",
        f"- {'met' if speedup >= 100 else 'MISSED'}: one-row appends vs ISF's append_save: {speedup:.0f}x faster "
        "(target ≥ 100x)",
        f"- {'met' if bw >= 0.5 else 'MISSED'}: batch appends vs memcpy bandwidth: {bw:.2f} (target ≥ 0.5)",
    ]
    text = "\n".join(lines)
    print(text)
    if "--write" in sys.argv:
        sys.path.insert(0, str(ROOT / "bench"))
        from sections import replace_section

        replace_section(sys.argv[sys.argv.index("--write") + 1], "store", text)


if __name__ == "__main__":
    main()
