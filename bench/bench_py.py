"""Python-level benchmark: ndshm's binding against SharedArray,
multiprocessing.shared_memory (+ wrapping in a numpy array) and cdxcore.npshm, for
create+delete and attach+release at 4 KiB and 64 MiB, and listing /dev/shm with 1,000
and 50,000 arrays in it (ndshm.list against SharedArray.list, per entry listed). Prints
JSON lines like bench.c.

    python3 bench/bench_py.py [--quick]
"""

import gc
import json
import os
import statistics
import sys
import time
import warnings

import numpy as np

import ndshm

QUICK = "--quick" in sys.argv
PID = os.getpid()
SIZES = [("4 KiB", 4096, 300 if QUICK else 3000), ("64 MiB", 64 << 20, 10 if QUICK else 60)]


def report(op, size, impl, times):
    times = sorted(times)
    print(json.dumps({"op": op, "size": size, "impl": impl, "median_us": times[len(times) // 2],
                      "min_us": times[0], "max_us": times[-1], "n": len(times)}), flush=True)


def timed(fn, reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1000.0)
    return out


def interleaved(fns, reps, batch=50):
    """{impl: times} for {impl: fn}, running the implementations in alternating
    batches (as bench.c does floor and ndshm) so the machine's noise hits all alike."""
    times = {k: [] for k in fns}
    done = 0
    while done < reps:
        n = min(batch, reps - done)
        for k, f in fns.items():
            times[k] += timed(f, n)
        done += n
    return times


def peers():
    """{impl: (create_delete(size) -> None, setup(size) -> cleanup, attach_release())}"""
    impls = {}
    name = f"ndshm-pybench-{PID}"

    def nd_create(size, sparse):
        def run():
            a = ndshm.create(name, (size,), dtype=np.int8, sparse=sparse)
            del a
            ndshm.delete(name)
        return run

    def nd_setup(size):
        keep = ndshm.create(name, (size,), dtype=np.int8)

        def attach():
            b = ndshm.attach(name)
            del b
        return attach, lambda: (keep.__class__, ndshm.delete(name))

    impls["ndshm"] = (lambda s: nd_create(s, False), nd_setup)
    impls["ndshm (sparse)"] = (lambda s: nd_create(s, True), None)

    try:
        import SharedArray as SA

        def sa_create(size):
            def run():
                a = SA.create(f"shm://{name}-sa", size, dtype=np.int8)
                del a
                SA.delete(f"{name}-sa")
            return run

        def sa_setup(size):
            keep = SA.create(f"shm://{name}-sa", size, dtype=np.int8)

            def attach():
                b = SA.attach(f"shm://{name}-sa")
                del b
            return attach, lambda: (keep.__class__, SA.delete(f"{name}-sa"))

        impls["SharedArray"] = (sa_create, sa_setup)
    except ImportError:
        print("SharedArray not installed: skipped", file=sys.stderr)

    from multiprocessing import shared_memory

    def mp_create(size):
        def run():
            shm = shared_memory.SharedMemory(f"{name}-mp", create=True, size=size)
            a = np.ndarray((size,), dtype=np.int8, buffer=shm.buf)
            del a
            shm.close()
            shm.unlink()
        return run

    def mp_setup(size):
        keep = shared_memory.SharedMemory(f"{name}-mp", create=True, size=size)

        def attach():
            shm = shared_memory.SharedMemory(f"{name}-mp")
            b = np.ndarray((size,), dtype=np.int8, buffer=shm.buf)
            del b
            shm.close()
        return attach, lambda: (keep.close(), keep.unlink())

    impls["mp.shared_memory"] = (mp_create, mp_setup)

    try:
        from cdxcore import npshm

        def cdx_create(size):
            def run():
                a = npshm.create_shared_array(f"{name}-cdx", (size,), np.int8)
                del a
                gc.collect(0)
                npshm.delete_shared_array(f"{name}-cdx")
            return run

        def cdx_setup(size):
            keep = npshm.create_shared_array(f"{name}-cdx", (size,), np.int8)

            def attach():
                b = npshm.attach_shared_array(f"{name}-cdx")
                del b
            return attach, lambda: (keep.__class__, npshm.delete_shared_array(f"{name}-cdx"))

        impls["cdxcore"] = (cdx_create, cdx_setup)
    except ImportError:
        print("cdxcore not installed: skipped", file=sys.stderr)
    return impls


def listing(counts):
    """Per-entry cost of listing /dev/shm with `count` arrays in it:

    * ndshm's own arrays: ndshm.list() with `count` ndshm arrays present, against
      SharedArray.list() with `count` SharedArray arrays present (each listing its own
      kind: what a user of either sees);
    * the same files: both listing the same `count` arrays made by SharedArray (ndshm
      reads SharedArray's layout too).

    The time of one whole call divided by the entries it returned (other users'
    arrays in /dev/shm count as entries too, for both).
    """
    try:
        import SharedArray as SA
    except ImportError:
        print("SharedArray not installed: listing skipped", file=sys.stderr)
        return
    prefix = f"ndshm-pylist-{PID}-"
    for count, reps in counts:
        label = f"{count:,} arrays"
        names = [f"{prefix}{i}" for i in range(count)]
        try:
            for n in names:
                SA.create(f"shm://{n}", 1, dtype=np.float64)
            gc.collect()
            report_list("py list per entry, same SharedArray files", label, "ndshm", ndshm.list, reps)
            report_list("py list per entry, same SharedArray files", label, "SharedArray", SA.list, reps)
            report_list("py list per entry", label, "SharedArray", SA.list, reps)
            for n in names:
                SA.delete(n)
            for n in names:
                ndshm.create(n, 1, sparse=True)
            gc.collect()
            report_list("py list per entry", label, "ndshm", ndshm.list, reps)
        finally:
            for n in names:
                try:
                    os.unlink(f"/dev/shm/{n}")
                except FileNotFoundError:
                    pass


def report_list(op, label, impl, fn, reps):
    fn()  # warm-up (and the dentry cache)
    per_entry = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        got = fn()
        dt = time.perf_counter_ns() - t0
        per_entry.append(dt / 1000.0 / max(1, len(got)))
        del got
    report(op, label, impl, per_entry)


def main():
    warnings.simplefilter("ignore")  # the resource tracker's leak warnings
    listing([(1000, 5), (5000, 2)] if QUICK else [(1000, 30), (50000, 5)])
    impls = peers()
    for label, size, reps in SIZES:
        creates = {impl: create(size) for impl, (create, _) in impls.items()}
        for f in creates.values():
            f()  # warm-up
        for impl, times in interleaved(creates, reps).items():
            report("py create+delete", label, impl, times)
        setups = {impl: setup(size) for impl, (_, setup) in impls.items() if setup is not None}
        try:
            attaches = {impl: attach for impl, (attach, _) in setups.items()}
            for f in attaches.values():
                f()
            for impl, times in interleaved(attaches, reps).items():
                report("py attach+release", label, impl, times)
        finally:
            for _, cleanup in setups.values():
                cleanup()


if __name__ == "__main__":
    main()
