"""Dask on one node: map a function over row blocks of a shared array without copying it.

    python3 examples-python/dask_row_blocks.py [ROWS COLS [NAME]]

The array lives in shared memory (``ndshm.create`` here; ``ndshm.load`` for a dataset
file). ``ndshm.by_name`` makes it, and every slice of it, pickle as a reference, so each
task receives a name, a shape and an offset, not the data: Dask's worker processes attach
the same memory (once per worker) and what they write the client sees. Each task scales
its block in place and returns its sum and the worker's private (anonymous) memory, which
would grow by the block's size if the block had been copied.

``pure=False``: Dask would otherwise tokenize every argument, and its token for a numpy
array (subclasses included) is a hash of all its data; shared arrays are also mutable,
so equal-looking blocks must not be merged into one task.
"""

import os
import sys

import numpy as np
from distributed import Client, LocalCluster

import ndshm


def scale_and_sum(block: np.ndarray, factor: float) -> tuple:
    """Runs in a Dask worker: writes into the shared block, returns facts about it."""
    block *= factor  # in place: the client's array changes
    with open("/proc/self/status") as f:
        anon_kib = next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))
    return os.getpid(), type(block).__name__, ndshm.is_shared(block), float(block.sum()), anon_kib


def main() -> None:
    rows, cols = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (8192, 4096)
    name = sys.argv[3] if len(sys.argv) > 3 else f"shm://dask-example-{os.getpid()}"
    x = ndshm.by_name(ndshm.create(name, (rows, cols), dtype=np.float32))
    try:
        x[...] = np.arange(rows, dtype=np.float32)[:, None]  # row i holds i
        step = max(1, rows // 16)
        blocks = [x[i:i + step] for i in range(0, rows, step)]
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            results = client.gather(client.map(scale_and_sum, blocks, factor=2.0, pure=False))
        pids = {r[0] for r in results}
        block_mib = step * cols * 4 / 2**20
        print(f"{len(blocks)} blocks of {block_mib:.1f} MiB on {len(pids)} worker processes")
        print(f"in the workers: {', '.join(sorted({r[1] for r in results}))}, shared: {all(r[2] for r in results)}, "
              f"largest worker RssAnon {max(r[4] for r in results) / 1024:.0f} MiB")
        want = float(np.arange(rows, dtype=np.float64).sum() * cols * 2)
        got = float(x.sum(dtype=np.float64))
        print(f"sum of the blocks' sums {sum(r[3] for r in results):.6g}, the client's array now sums to {got:.6g} "
              f"(expected {want:.6g})")
        if got != want or not all(r[2] for r in results):
            sys.exit("the workers did not write into the shared array")
    finally:
        del x
        ndshm.delete(name)


if __name__ == "__main__":
    main()
