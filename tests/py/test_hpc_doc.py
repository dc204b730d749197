"""docs/HPC.md's SLURM scripts, run as far as they can be without SLURM: both scripts
are extracted from the page as they are and run with a stand-in for srun (a step of one
task per node runs here once; other steps run SLURM_NTASKS ranks through mpirun), the
example program built from examples-mpi/ and the ndshm tool on PATH. To the end: one
load, a second step that attaches, the directory gone. Cancelled: SIGTERM to every
process of the job (what scancel does) while a step runs: the directory is gone."""

import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import time

import numpy as np
import pytest

from conftest import ROOT, env

pytestmark = pytest.mark.skipif(
    not (shutil.which("mpicc") and shutil.which("mpirun")),
    reason="OpenMPI is not installed (apt-get install openmpi-bin libopenmpi-dev; .ci/run installs it)",
)

DOC = ROOT / "docs" / "HPC.md"

FAKE_SRUN = """#!/bin/bash
# Stand-in for srun on one node: --ntasks-per-node=1 runs the command once, here; any
# other step runs $SLURM_NTASKS ranks through mpirun, then holds for $FAKE_SRUN_HOLD
# seconds (a long step, for the cancellation test).
once=0
while [[ $# -gt 0 && $1 == -* ]]; do
  [[ $1 == --ntasks-per-node=1 ]] && once=1
  shift
done
((once)) && exec "$@"
mpirun MPIRUN_OPTS -np "$SLURM_NTASKS" "$@"
rc=$?
sleep "${FAKE_SRUN_HOLD:-0}"
exit $rc
"""


def scripts():
    """{file name: text} for every block marked `<!-- hpc-test: NAME -->` in the page."""
    text = DOC.read_text()
    found = dict(re.findall(r"<!-- hpc-test: (\S+) -->\n```bash\n(.*?)```", text, re.S))
    assert set(found) == {"job.sh", "ndshm-node-guard.sh"}, found.keys()
    return found


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory, libdir):
    """A submit directory: the two scripts, ./load_sum, a .npy, and a bin/ with srun and
    the ndshm tool."""
    d = tmp_path_factory.mktemp("job")
    for name, text in scripts().items():
        (d / name).write_text(text)
        (d / name).chmod(0o755)
    subprocess.run(["mpicc", "-O2", "-std=c11", f"-I{ROOT / 'include'}", str(ROOT / "examples-mpi/load_sum.c"),
                    f"-L{libdir}", "-lndshm", f"-Wl,-rpath,{libdir}", "-o", str(d / "load_sum")], check=True)
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "ndshm-cli", "--manifest-path",
                    str(ROOT / "Cargo.toml")], check=True)
    b = d / "bin"
    b.mkdir()
    opts = "--oversubscribe --mca btl self,vader" + (" --allow-run-as-root" if os.geteuid() == 0 else "")
    (b / "srun").write_text(FAKE_SRUN.replace("MPIRUN_OPTS", opts))
    (b / "srun").chmod(0o755)
    (b / "ndshm").symlink_to(ROOT / "target/release/ndshm")
    x = np.arange(1000 * 64, dtype=np.float64).reshape(1000, 64)
    np.save(d / "train.npy", x)
    return d, float(x.sum())


_jobs = iter(range(1000))


@pytest.fixture
def job_env(job_dir):
    """The environment SLURM would give the batch script, and its NDSHM_DIR, which is
    removed after the test whatever happened."""
    d, _ = job_dir
    job_id = f"{os.getpid()}{next(_jobs)}"
    e = dict(env(), PATH=f"{d / 'bin'}:{os.environ['PATH']}", SLURM_JOB_ID=job_id, SLURM_NTASKS="4",
             SLURM_NNODES="1", USER="ndshmtest", DATA=str(d / "train.npy"),
             OMPI_MCA_btl_vader_single_copy_mechanism="none")
    shm_dir = pathlib.Path(f"/dev/shm/ndshm-ndshmtest-{job_id}")
    # OpenMPI's own segments in a directory of ours: a killed job leaves them behind.
    e["OMPI_MCA_btl_vader_backing_directory"] = vader = tempfile.mkdtemp(prefix="ndshm-test-ompi-", dir="/dev/shm")
    yield e, shm_dir
    shutil.rmtree(shm_dir, ignore_errors=True)
    shutil.rmtree(vader, ignore_errors=True)


def test_job_script_loads_once_and_cleans_up(job_dir, job_env):
    d, want = job_dir
    e, shm_dir = job_env
    r = subprocess.run(["bash", "job.sh"], cwd=d, env=e, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    totals = re.findall(r"^ranks 4 nodes 1 loads (\d) sum (\S+)$", r.stdout, re.M)
    # The first step loads once; the second attaches what the first left.
    assert [(int(n), float(s)) for n, s in totals] == [(1, want), (0, want)], r.stdout
    assert not shm_dir.exists(), list(shm_dir.iterdir())


def test_cancelled_job_cleans_up(job_dir, job_env):
    d, _ = job_dir
    e, shm_dir = job_env
    e["FAKE_SRUN_HOLD"] = "120"  # the first step then runs for two more minutes
    p = subprocess.Popen(["bash", "job.sh"], cwd=d, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not (shm_dir / "train").exists():
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the job never loaded its array"
            time.sleep(0.2)
        time.sleep(0.5)
        os.killpg(p.pid, signal.SIGTERM)  # scancel: SIGTERM to every process of the job
        out, err = p.communicate(timeout=30)
        assert p.returncode != 0, out + err
        deadline = time.monotonic() + 10
        while shm_dir.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not shm_dir.exists(), (list(shm_dir.iterdir()), out, err)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
