"""examples-mpi/ under real MPI (OpenMPI from the distribution's packages): the C, Fortran
and mpi4py programs built and run with 4 ranks by mpirun, on this node and as two
simulated nodes (two groups of ranks with different NDSHM_DIR directories). Checks that
the file was read exactly once per (simulated) node, both by the programs' SA_CREATED
outcomes and by the bytes each rank read from files (/proc/self/io rchar, which counts
sendfile), and that the reduced sum is exact."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from conftest import ROOT, env

pytestmark = pytest.mark.skipif(
    not (shutil.which("mpicc") and shutil.which("mpirun")),
    reason="OpenMPI is not installed (apt-get install openmpi-bin libopenmpi-dev; .ci/run installs it)",
)

ROWS, COLS = 2000, 512  # 8 MiB of float64: enough to tell the loader's reads from a header's


def mpirun():
    """mpirun for this machine: 4 ranks on 2 cores (--oversubscribe), as root in CI
    containers (--allow-run-as-root), no network: shared memory between ranks only."""
    cmd = ["mpirun", "--oversubscribe", "--mca", "btl", "self,vader"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd


_VADER_DIR = tempfile.mkdtemp(prefix="ndshm-test-ompi-", dir="/dev/shm")


@pytest.fixture(scope="module", autouse=True)
def _vader_dir():
    """OpenMPI's own shared-memory segments go to a directory of ours, removed after the
    tests: a job killed by a timeout would otherwise leave them in /dev/shm."""
    yield
    shutil.rmtree(_VADER_DIR, ignore_errors=True)


def mpi_env():
    e = env()
    # Containers often forbid the cross-process copies (CMA) vader uses for large
    # messages; ours are tiny, but a failure there would be MPI's, not ndshm's.
    e["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
    e["OMPI_MCA_btl_vader_backing_directory"] = _VADER_DIR
    return e


@pytest.fixture(scope="module")
def programs(tmp_path_factory, libdir):
    """{language: argv prefix} for examples-mpi/, built with mpicc and mpifort."""
    out = tmp_path_factory.mktemp("mpi")
    link = [f"-L{libdir}", "-lndshm", f"-Wl,-rpath,{libdir}"]
    subprocess.run(["mpicc", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}",
                    str(ROOT / "examples-mpi/load_sum.c"), *link, "-o", str(out / "load_sum")], check=True)
    progs = {"c": [str(out / "load_sum")]}
    if importlib.util.find_spec("mpi4py"):
        progs["python"] = [sys.executable, "-m", "mpi4py", str(ROOT / "examples-mpi/load_sum.py")]
    if shutil.which("mpifort"):
        subprocess.run(["mpifort", "-std=f2018", "-Wall", "-Wextra", "-Werror", f"-J{out}", "-c",
                        str(ROOT / "bindings/fortran/ndshm.f90"), "-o", str(out / "ndshm_f.o")], check=True)
        subprocess.run(["mpifort", "-O2", "-Wall", "-Werror", "-ffree-line-length-none", f"-I{out}",
                        str(ROOT / "examples-mpi/load_sum.f90"), str(out / "ndshm_f.o"), *link,
                        "-o", str(out / "load_sum_f")], check=True)
        progs["fortran"] = [str(out / "load_sum_f")]
    return progs


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A 2-d float64 .npy of small integers (every sum exact in float64) and its sum."""
    path = tmp_path_factory.mktemp("data") / "data.npy"
    x = (np.arange(ROWS * COLS, dtype=np.int64) % 1000).astype(np.float64).reshape(ROWS, COLS)
    np.save(path, x)
    return path, float(x.sum())


@pytest.fixture
def shm_dirs():
    """Directories on /dev/shm to serve as NDSHM_DIR (a job-private directory each);
    removed with whatever is in them, also when the test fails."""
    made = []

    def make():
        made.append(tempfile.mkdtemp(prefix="ndshm-mpi-", dir="/dev/shm"))
        return made[-1]

    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


RANK_LINE = re.compile(r"^rank (\d+) node_rank (\d+)/(\d+) outcome (created|attached)\s+read_bytes (-?\d+) rows")
TOTAL_LINE = re.compile(r"^ranks (\d+) nodes (\d+) loads (\d+) sum\s+(\S+)$")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, env=mpi_env(), timeout=120)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout}\n{r.stderr}"
    ranks = {}
    total = None
    for line in r.stdout.splitlines():
        if m := RANK_LINE.match(line.strip()):
            ranks[int(m[1])] = (m[4], int(m[5]))
        elif m := TOTAL_LINE.match(line.strip()):
            total = (int(m[1]), int(m[2]), int(m[3]), float(m[4]))
    assert sorted(ranks) == [0, 1, 2, 3] and total is not None, r.stdout + r.stderr
    return ranks, total


def check_one_load(ranks, group):
    """Exactly one rank of `group` loaded: its outcome is SA_CREATED and it read the whole
    file; the others attached and read only small files (the .npy header, /proc)."""
    nbytes = ROWS * COLS * 8
    created = [r for r in group if ranks[r][0] == "created"]
    assert len(created) == 1, ranks
    for r in group:
        if r in created:
            assert ranks[r][1] >= nbytes, (r, ranks)
        else:
            assert 0 <= ranks[r][1] < nbytes // 8, (r, ranks)


LANGS = ["c", "fortran", "python"]
MISSING = {"fortran": "mpifort is not installed (libopenmpi-dev with gfortran provides it)",
           "python": "mpi4py is not installed (pip install mpi4py; make python-deps does)"}


def skip_missing(programs, lang):
    if lang not in programs:
        pytest.skip(MISSING[lang])


@pytest.mark.parametrize("lang", LANGS)
def test_one_node_loads_once(programs, dataset, lang):
    skip_missing(programs, lang)
    path, want = dataset
    name = f"ndshm-mpi-{lang}-{os.getpid()}"
    try:
        ranks, (n, nodes, loads, total) = run([*mpirun(), "-np", "4", *programs[lang], str(path), name, "--delete"])
        assert (n, nodes, loads) == (4, 1, 1)
        check_one_load(ranks, [0, 1, 2, 3])
        assert total == want
        # --delete: the loading rank removed the name once its node was done.
        assert not os.path.exists(f"/dev/shm/{name}")
    finally:
        if os.path.exists(f"/dev/shm/{name}"):
            os.unlink(f"/dev/shm/{name}")


@pytest.mark.parametrize("lang", LANGS)
def test_two_simulated_nodes_load_once_each(programs, dataset, shm_dirs, lang):
    """Ranks 0-1 and ranks 2-3 see different NDSHM_DIR directories, as ranks on two
    nodes see different /dev/shm: one load in each. The arrays outlive the job (no
    --delete), and a process outside MPI attaches one by name."""
    skip_missing(programs, lang)
    path, want = dataset
    a, b = shm_dirs(), shm_dirs()
    name = f"ndshm-mpi2-{lang}"
    prog = [*programs[lang], str(path), name]
    # MPMD: two application contexts, each run through `env` with its own NDSHM_DIR.
    cmd = [*mpirun(), "-np", "2", "env", f"NDSHM_DIR={a}", *prog, ":", "-np", "2", "env", f"NDSHM_DIR={b}", *prog]
    ranks, (n, nodes, loads, total) = run(cmd)
    assert (n, nodes, loads) == (4, 1, 2)  # one real node: MPI's node communicator has all 4
    check_one_load(ranks, [0, 1])
    check_one_load(ranks, [2, 3])
    assert total == want
    assert sorted(os.listdir(a)) == sorted(os.listdir(b)) == [name]
    monitor = ("import ndshm, sys; x = ndshm.attach(sys.argv[1], ro=True); "
               "print(x.shape, float(x.sum()))")
    r = subprocess.run([sys.executable, "-c", monitor, f"shm://{name}"], capture_output=True, text=True,
                       env=dict(env(), NDSHM_DIR=b), timeout=60)
    assert r.stdout.strip() == f"({ROWS}, {COLS}) {want}", r.stderr
