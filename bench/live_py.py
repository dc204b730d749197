#!/usr/bin/env python3
"""Live-data benchmark, Python part (driven by bench/live.py, which prints the table).

Publish-to-read round trips between two Python processes, as bench/live.c measures
them in C: the writer publishes, the reader notices (busy-polling, or blocked in
ndshm.wait), copies the data and acknowledges through a shared counter on which the
writer spins. One sample is one whole round trip, measured by the writer.

    numpy-floor   plain numpy on a /dev/shm mapping: copy in, bump a counter; the reader
                  spins on the counter, copies out, acknowledges. No consistency at all.
    ndshm-spin    ndshm.publish; the reader polls ndshm.version, then read_snapshot.
    ndshm-wait    the reader blocks in ndshm.wait, then read_snapshot.
    ndsharray     NdShArray.write; the reader polls NdShArray.read() until it is valid.

    python3 bench/live_py.py ITERATIONS_SMALL ITERATIONS_LARGE     (JSON lines)
"""

import json
import mmap
import os
import subprocess
import sys
import time

import numpy as np

SETTLE = 50e-6  # blocked-reader mode: let the reader fall asleep before each publish


def shm_array(name, shape, dtype, create):
    path = f"/dev/shm/{name}"
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    if create:
        os.ftruncate(fd, max(n, 8))
    m = mmap.mmap(fd, max(n, 8))
    os.close(fd)
    return np.frombuffer(m, dtype=dtype, count=int(np.prod(shape))).reshape(shape)


def reader(impl, name, n, iters):
    import ndshm

    ack = shm_array(name + "-ack", (1,), np.uint64, False)
    last = 0
    if impl == "numpy-floor":
        ctr = shm_array(name + "-ctr", (1,), np.uint64, False)
        data = shm_array(name + "-data", (n,), np.float64, False)
        while last < iters:
            while ctr[0] == last:
                pass
            x = data.copy()
            last = int(ctr[0])
            ack[0] = last
    elif impl in ("ndshm-spin", "ndshm-wait"):
        b = ndshm.attach("shm://" + name, ro=True)
        version, wait, read_snapshot = ndshm.version, ndshm.wait, ndshm.read_snapshot
        while last < iters:
            if impl == "ndshm-spin":
                while version(b) == last:
                    pass
            else:
                wait(b, last)
            x, last = read_snapshot(b, return_version=True)
            ack[0] = last
    else:
        from ndsharray import NdShArray

        r = NdShArray(name, r_w="r")
        r.read()
        got = 0
        while got < iters:
            ok, x = r.read()
            if ok:
                got += 1
                ack[0] = got
    assert x[-1] == n - 1


def writer(impl, n, iters):
    import ndshm

    name = f"ndshm-bench-py-{os.getpid()}"
    ack = shm_array(name + "-ack", (1,), np.uint64, True)
    ack[0] = 0
    src = np.arange(n, dtype=np.float64)
    samples = []
    cleanup = [name + "-ack"]
    if impl == "numpy-floor":
        ctr = shm_array(name + "-ctr", (1,), np.uint64, True)
        data = shm_array(name + "-data", (n,), np.float64, True)
        ctr[0] = 0
        cleanup += [name + "-ctr", name + "-data"]
    elif impl.startswith("ndshm"):
        a = ndshm.create("shm://" + name, (n,), force=True)
        cleanup.append(name)
    else:
        from ndsharray import NdShArray

        w = NdShArray(name, np.zeros(n), r_w="w")
    child = subprocess.Popen([sys.executable, __file__, "reader", impl, name, str(n), str(iters)])
    time.sleep(0.3 if impl != "ndsharray" else 1.0)  # the reader attaches
    perf = time.perf_counter_ns
    publish = ndshm.publish
    for i in range(1, iters + 1):
        if impl == "ndshm-wait":
            t = perf()
            while perf() - t < SETTLE * 1e9:
                pass
        t0 = perf()
        if impl == "numpy-floor":
            data[:] = src
            ctr[0] = i
        elif impl.startswith("ndshm"):
            publish(a, src)
        else:
            w.write(src)
        while ack[0] != i:
            pass
        samples.append(perf() - t0)
    assert child.wait() == 0
    if impl == "ndsharray":
        # ndsharray never deletes its segments: its control file and one data file.
        for f in os.listdir("/dev/shm"):
            if f == name or f.startswith(name + "_"):
                cleanup.append(f)
    for f in cleanup:
        try:
            os.unlink(f"/dev/shm/{f}")
        except FileNotFoundError:
            pass
    samples.sort()
    print(json.dumps({"impl": "py-" + impl, "elements": n, "median_us": samples[len(samples) // 2] / 1e3,
                      "p99_us": samples[int(len(samples) * 0.99)] / 1e3, "min_us": samples[0] / 1e3,
                      "samples": len(samples)}), flush=True)


def main():
    if sys.argv[1] == "reader":
        reader(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    small, large = int(sys.argv[1]), int(sys.argv[2])
    try:
        import ndsharray  # noqa: F401

        peers = ["ndsharray"]
    except ImportError:
        print("ndsharray is not installed (pip install ndsharray): skipped", file=sys.stderr)
        peers = []
    for n, iters in ((100, small), ((1 << 20) // 8, large)):
        for rep in range(2):  # floor and ndshm alternate, so noise hits both alike
            writer("numpy-floor", n, iters // 2)
            writer("ndshm-spin", n, iters // 2)
        writer("ndshm-wait", n, iters // 2)
        for p in peers:
            writer(p, n, max(50, iters // 10))


if __name__ == "__main__":
    main()
