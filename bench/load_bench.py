#!/usr/bin/env python3
"""Loading a 1 GiB .npy file that is already in the page cache into shared memory:
ndshm against the raw kernel methods (bench/load.c, interleaved in one program) and the
peers a user would pick instead (cdxcore's read_shared_array, numpy.load + a copy into a
SharedArray array, cp), then the same on a tmpfs mounted huge=within_size (when run as
root). Prints one table with GB/s and ratios; --write FILE replaces the section between
<!-- load:start --> and <!-- load:end --> in FILE.

    python3 bench/load_bench.py [--quick] [--write docs/BENCHMARKS.md]
"""

import importlib.util
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = "--quick" in sys.argv
SIZE = (256 << 20) if QUICK else (1 << 30)
ROUNDS = 3 if QUICK else 5


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def build():
    sh(["cargo", "build", "-q", "--release", "--lib", "--manifest-path", str(ROOT / "Cargo.toml")])
    lib = ROOT / "target" / "release"
    out = ROOT / "target" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    exe = out / "load"
    sh(["cc", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}", str(ROOT / "bench/load.c"),
        f"-L{lib}", "-lndshm", f"-Wl,-rpath,{lib}", "-lpthread", "-o", str(exe)])
    return exe


def peers_installed():
    missing = [p for p in ("SharedArray", "cdxcore") if importlib.util.find_spec(p) is None]
    if missing:
        sh([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *missing])


def make_files(d):
    import numpy as np

    a = np.arange(SIZE // 8, dtype=np.float64)
    npy = d / "data.npy"
    np.save(npy, a)
    npio = d / "data.npio"
    from cdxcore import npio as cdx_npio

    cdx_npio.to_file(str(npio), a)
    for f in (npy, npio):  # into the page cache
        with open(f, "rb") as fh:
            while fh.read(64 << 20):
                pass
    return npy, npio


def timed(f, rounds):
    f()  # warm-up
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), min(ts), max(ts)


def peer_methods(npy, npio):
    import numpy as np
    import SharedArray
    from cdxcore import npshm

    name = f"ndshm-bench-peer-{os.getpid()}"

    def cdxcore_read():
        a = npshm.read_shared_array(str(npio), name, accept_existing=False)
        del a
        npshm.delete_shared_array(name)

    def numpy_sharedarray():
        src = np.load(npy)
        dst = SharedArray.create("shm://" + name, src.shape, src.dtype)
        dst[...] = src
        del dst, src
        SharedArray.delete("shm://" + name)

    def cp():
        sh(["cp", str(npy), f"/dev/shm/{name}"])
        os.unlink(f"/dev/shm/{name}")

    return [
        ("cdxcore read_shared_array (npio file)", cdxcore_read),
        ("numpy.load + copy into SharedArray", numpy_sharedarray),
        ("cp FILE /dev/shm", cp),
    ]


def run_c(exe, npy, d):
    out = sh([str(exe), str(npy), str(d), str(ROUNDS)], capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def mount_huge():
    if os.geteuid() != 0:
        return None, "not root: cannot mount a tmpfs"
    d = pathlib.Path(tempfile.mkdtemp(prefix="ndshm-huge-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={2 * SIZE + (64 << 20)},huge=within_size", "ndshm-huge", str(d)],
                       capture_output=True, text=True)
    if r.returncode:
        d.rmdir()
        return None, r.stderr.strip()
    return d, None


def main():
    exe = build()
    peers_installed()
    t0 = time.time()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ndshm-load-bench-"))
    rows = []
    try:
        npy, npio = make_files(tmp)
        for r in run_c(exe, npy, "/dev/shm"):
            rows.append(("/dev/shm", r["method"], r["seconds"], r["min"], r["max"]))
        for label, f in peer_methods(npy, npio):
            med, lo, hi = timed(f, ROUNDS)
            rows.append(("/dev/shm", label, med, lo, hi))
        huge, why = mount_huge()
        if huge:
            try:
                for r in run_c(exe, npy, huge):
                    rows.append(("tmpfs huge=within_size", r["method"], r["seconds"], r["min"], r["max"]))
            finally:
                subprocess.run(["umount", str(huge)])
                huge.rmdir()
    finally:
        shutil.rmtree(tmp)
    report = render(rows, time.time() - t0, why if not huge else None)
    print(report)
    if "--write" in sys.argv:
        from sections import replace_section

        replace_section(sys.argv[sys.argv.index("--write") + 1], "load", report)


def render(rows, secs, huge_skipped):
    gb = SIZE / 1e9
    machine = f"{platform.node()}: {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}"
    lines = [
        f"Command: `make bench-load{'-quick' if QUICK else ''}` ({secs:.0f} s), machine: {machine}. "
        f"A {SIZE >> 20} MiB float64 `.npy` file (and the same data as cdxcore npio) in the page "
        f"cache, copied into a new file of the target directory; median of {ROUNDS} rounds after a warm-up.",
        "",
        "| target | method | median | [min, max] | GB/s | ndshm / this (time) |",
        "|---|---|---|---|---|---|",
    ]
    checks = []
    for target in dict.fromkeys(r[0] for r in rows):
        here = [r for r in rows if r[0] == target]
        nd = next(r for r in here if r[1] == "ndshm sa_load")
        raw_best = min((r for r in here if r[1].startswith("raw")), key=lambda r: r[2])
        for r in here:
            lines.append(f"| {target} | {r[1]} | {r[2]:.3f} s | [{r[3]:.3f}, {r[4]:.3f}] | {gb / r[2]:.2f} | "
                         f"{nd[2] / r[2]:.2f} |")
        checks.append(f"- {'met   ' if raw_best[2] / nd[2] >= 0.9 else 'MISSED'} {target}: ndshm at "
                      f"{raw_best[2] / nd[2]:.2f}x the speed of the fastest raw method ({raw_best[1]}) "
                      "(target >= 0.9)")
        for r in here:
            if not r[1].startswith(("raw", "ndshm")):
                checks.append(f"- {'met   ' if r[2] / nd[2] >= 2 else 'MISSED'} {target}: ndshm "
                              f"{r[2] / nd[2]:.2f}x faster than {r[1]} (target >= 2)")
    if huge_skipped:
        lines.append(f"\nThe huge-page tmpfs was not measured: {huge_skipped}.")
    return "\n".join(lines) + "\n\nTargets (ratios from this run):\n\n" + "\n".join(checks) + "\n"


if __name__ == "__main__":
    main()
