"""Benchmark (a program, not a test): a dataset for every MPI rank of a node, three ways.

    python3 bench/mpi_bench.py [--quick] [--runs N] [--write docs/BENCHMARKS.md]

Builds bench/mpi_load.c with mpicc against the release library, writes a 1 GiB .npy
(128 MiB with --quick) and reads it once so that it is in the page cache, then runs
``mpirun -np 4 mpi_load METHOD`` for ndshm (open-or-create), an MPI shared window
(MPI_Win_allocate_shared filled by the node leader) and private copies, in alternating
order, RUNS times each, and prints the medians as a table (``make bench-mpi``). With
--write it replaces the table between the bench-mpi markers of the given file.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
REL = ROOT / "target" / "release"
METHODS = {
    "ndshm": "ndshm open-or-create (`sa_load`)",
    "window": "`MPI_Win_allocate_shared`, leader preads the file",
    "private": "every rank preads its own copy",
}


def mpirun():
    cmd = ["mpirun", "--oversubscribe", "--mca", "btl", "self,vader", "-np", "4"]
    return cmd + (["--allow-run-as-root"] if os.geteuid() == 0 else [])


def build(out):
    exe = out / "mpi_load"
    subprocess.run(["mpicc", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}",
                    str(ROOT / "bench/mpi_load.c"), f"-L{REL}", "-lndshm", f"-Wl,-rpath,{REL}", "-o", str(exe)],
                   check=True)
    return exe


def make_dataset(path, nbytes):
    """A float64 .npy of nbytes, written in 64 MiB chunks (never 1 GiB in this process)."""
    n = nbytes // 8
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n,))
    step = 8 << 20
    for i in range(0, n, step):
        x[i:i + step] = np.arange(i, min(n, i + step), dtype=np.float64)
    x.flush()
    del x
    with open(path, "rb") as f:  # into the page cache: every method starts from there
        while f.read(64 << 20):
            pass


def run(exe, method, path, name):
    try:
        r = subprocess.run([*mpirun(), str(exe), method, str(path), name], capture_output=True, text=True,
                           timeout=600, env=dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none"))
        if r.returncode != 0:
            sys.exit(f"{method}: mpirun failed\n{r.stdout}\n{r.stderr}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
        if not res["same_sum"]:
            sys.exit(f"{method}: the ranks read different data")
        return res
    finally:
        try:  # the program deletes it; a crashed run must not leave 1 GiB behind
            os.unlink(f"/dev/shm/{name}")
        except FileNotFoundError:
            pass


def machine():
    return f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}"


def table(results, nbytes, runs, elapsed, quick):
    cmd = "make bench-mpi-quick" if quick else "make bench-mpi"
    mib = nbytes / 2**20
    size = f"{nbytes / 2**30:.0f} GiB" if nbytes >= 2**30 else f"{mib:.0f} MiB"
    lines = [
        f"Command: `{cmd}` ({elapsed:.0f} s), machine: {machine()}. {size} float64 .npy in the page cache, "
        f"4 ranks on this one node (`mpirun --oversubscribe`: 4 ranks on 2 cores, so the ranks also "
        f"wait for each other's CPU), OpenMPI {ompi_version()}; medians of {runs} runs, [min, max].",
        "",
        "| method | every rank holds the data | ... and has read all of it | PSS sum, 4 ranks | node shmem growth | files read |",
        "|---|---|---|---|---|---|",
    ]
    for m, label in METHODS.items():
        rs = results[m]
        ready = [r["ready_s"] for r in rs]
        read = [r["read_s"] for r in rs]
        pss = statistics.median(r["pss_mib"] for r in rs)
        shm = statistics.median(r["shmem_mib"] for r in rs)
        loads = {"ndshm": "1 (`SA_CREATED` once)" if all(r["loads"] == 1 for r in rs) else "?",
                 "window": "1 (the leader)", "private": "4"}[m]
        lines.append(f"| {label} | {statistics.median(ready):.2f} s [{min(ready):.2f}, {max(ready):.2f}] | "
                     f"{statistics.median(read):.2f} s [{min(read):.2f}, {max(read):.2f}] | {pss:.0f} MiB | "
                     f"{shm:.0f} MiB | {loads} |")
    return "\n".join(lines)


def ompi_version():
    r = subprocess.run(["mpirun", "--version"], capture_output=True, text=True)
    return r.stdout.split()[3] if r.returncode == 0 and len(r.stdout.split()) > 3 else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="128 MiB, one run per method")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--write", metavar="FILE", help="replace the table between the bench-mpi markers")
    args = ap.parse_args()
    nbytes = (128 << 20) if args.quick else (1 << 30)
    runs = args.runs or (1 if args.quick else 3)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ndshm-bench-mpi-") as d:
        d = pathlib.Path(d)
        exe = build(d)
        path = d / "data.npy"
        make_dataset(path, nbytes)
        name = f"ndshm-bench-mpi-{os.getpid()}"
        results = {m: [] for m in METHODS}
        for i in range(runs):
            order = list(METHODS) if i % 2 == 0 else list(reversed(METHODS))  # noise hits all alike
            for m in order:
                results[m].append(run(exe, m, path, name))
                print(json.dumps(results[m][-1]), file=sys.stderr)
    out = table(results, nbytes, runs, time.monotonic() - start, args.quick)
    print(out)
    if args.write:
        from sections import replace_section

        replace_section(args.write, "bench-mpi", out, append_if_missing=False)


if __name__ == "__main__":
    main()
