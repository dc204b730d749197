"""One copy of a dataset per node, shared by every MPI rank on it (Python, mpi4py).

    mpirun -np 4 python3 -m mpi4py load_sum.py data.npy train [--delete]

(``-m mpi4py``: an uncaught exception in one rank aborts the whole job instead of
leaving the other ranks waiting in a collective call forever.)

The same program as load_sum.c: every rank calls ``ndshm.load`` on the same file and
name; on each node exactly one rank reads the file into shared memory, the others wait
until it is complete and attach. The node communicator (``COMM_TYPE_SHARED``) counts
the loads per node and tells when a node's ranks are done. Each rank sums its slice of
rows; ``comm.reduce`` adds the partial sums over the job.
"""

import math
import sys

from mpi4py import MPI

import ndshm


def rchar() -> int:
    """Bytes this process has read through read-like system calls (sendfile included)."""
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return -1


def main() -> None:
    world = MPI.COMM_WORLD
    rank, size = world.Get_rank(), world.Get_size()
    if len(sys.argv) < 3:
        if rank == 0:
            print("usage: load_sum.py FILE.npy NAME [--delete]", file=sys.stderr)
        world.Abort(2)
    path, name = sys.argv[1], sys.argv[2]
    delete = sys.argv[3:4] == ["--delete"]
    node = world.Split_type(MPI.COMM_TYPE_SHARED, key=rank)

    before = rchar()
    # Read-only; wait as long as another rank's load of a big file takes (a loader that
    # dies is replaced, not waited for).
    x, status = ndshm.load(path, name, read_only=True, return_status=True, timeout=math.inf)
    read_bytes = rchar() - before
    lo, hi = x.shape[0] * rank // size, x.shape[0] * (rank + 1) // size
    partial = float(x[lo:hi].sum())

    total = world.reduce(partial, op=MPI.SUM, root=0)
    created = int(status == "created")
    loads = world.reduce(created, op=MPI.SUM, root=0)
    nodes = world.reduce(int(node.Get_rank() == 0), op=MPI.SUM, root=0)
    # One line per rank, printed by rank 0 (ranks writing to one stdout would interleave).
    lines = world.gather(f"rank {rank} node_rank {node.Get_rank()}/{node.Get_size()} outcome {status} "
                         f"read_bytes {read_bytes} rows {lo}:{hi}", root=0)
    if rank == 0:
        print("\n".join(lines), flush=True)

    # Every rank of this node is done with the data before its loader removes the name.
    node.Barrier()
    if delete and created:
        ndshm.delete(name)
    del x
    world.Barrier()
    if rank == 0:
        print(f"ranks {size} nodes {nodes} loads {loads} sum {total!r}", flush=True)
    node.Free()


if __name__ == "__main__":
    main()
