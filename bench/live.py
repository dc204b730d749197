#!/usr/bin/env python3
"""Live-data benchmark: publish-to-read latency between two processes, one table.

    python3 bench/live.py [--quick]        (make bench-live)

Builds the release library and bench/live.c, installs ndsharray with pip where missing,
runs bench/live.c (the C floors and ndshm from C) and bench/live_py.py (the numpy floor,
ndshm from Python, ndsharray), then prints median and 99th percentile of the round trip
(publish, reader copy, acknowledgement) for 100 and 131,072 float64 (1 MiB), the
readers busy-polling and blocked in the wait call, the ratios the issue sets targets
for, and the snapshot copy bandwidth against memcpy.
"""

import json
import os
import pathlib
import platform
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = "--quick" in sys.argv


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def build():
    sh(["cargo", "build", "-q", "--release", "--lib", "--manifest-path", str(ROOT / "Cargo.toml")])
    # The Python binding's compiled fast path, in place (NDSHM_NO_EXT=1 measures ctypes alone).
    sh(["make", "-s", "-C", str(ROOT), "python-ext", f"PYTHON={sys.executable}"])
    lib = ROOT / "target" / "release"
    exe = ROOT / "target" / "bench-live"
    sh(["cc", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}", str(ROOT / "bench/live.c"),
        f"-L{lib}", "-lndshm", f"-Wl,-rpath,{lib}", "-o", str(exe)])
    return exe, lib / "libndshm.so"


def lines(cmd, env=None):
    out = sh(cmd, capture_output=True, text=True, env=env).stdout
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def main():
    exe, lib = build()
    try:
        import ndsharray  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "ndsharray"], check=False)
    small, large = (4000, 200) if QUICK else (40000, 1000)
    rows = lines([str(exe), str(small), str(large)])
    env = dict(os.environ, NDSHM_LIBRARY=str(lib), PYTHONPATH=str(ROOT / "bindings" / "python"))
    rows += lines([sys.executable, str(ROOT / "bench/live_py.py"), str(small // 4), str(large // 4)], env=env)

    lat = {}
    for r in rows:
        if "elements" in r:
            lat.setdefault((r["impl"], r["elements"]), []).append(r)
    best = {k: min(v, key=lambda r: r["median_us"]) for k, v in lat.items()}

    print(f"machine: {platform.node()}: {os.cpu_count()} cores, {platform.machine()}, "
          f"Linux {platform.release()}; load average {os.getloadavg()[0]:.1f}")
    print()
    print("| implementation | reader | 100 float64: median | p99 | 1 MiB: median | p99 |")
    print("|---|---|---|---|---|---|")
    names = [
        ("floor-spin", "C floor: shared counter + memcpy", "spins"),
        ("ndshm-spin", "ndshm from C", "polls sa_get_version"),
        ("floor-futex", "C floor: counter + memcpy + futex", "blocked in FUTEX_WAIT"),
        ("ndshm-wait", "ndshm from C", "blocked in sa_wait_version"),
        ("py-numpy-floor", "Python floor: numpy on /dev/shm", "spins"),
        ("py-ndshm-spin", "ndshm from Python", "polls ndshm.version"),
        ("py-ndshm-wait", "ndshm from Python", "blocked in ndshm.wait"),
        ("py-ndsharray", "ndsharray 1.1.4", "polls read()"),
    ]
    big = (1 << 20) // 8
    for impl, label, how in names:
        cells = []
        for n in (100, big):
            r = best.get((impl, n))
            cells += [f"{r['median_us']:.2f} µs", f"{r['p99_us']:.1f} µs"] if r else ["-", "-"]
        print(f"| {label} | {how} | " + " | ".join(cells) + " |")
    print()

    def ratio(a, b, n):
        if (a, n) in best and (b, n) in best:
            return best[(a, n)]["median_us"] / best[(b, n)]["median_us"]
        return None

    targets = [
        ("ndshm from C vs the C floor, 100 float64 (target <= 3)", ratio("ndshm-spin", "floor-spin", 100), 3, True),
        ("ndshm from C vs the C floor, 1 MiB (target <= 1.5)", ratio("ndshm-spin", "floor-spin", big), 1.5, True),
        ("ndshm from Python vs the Python floor, 100 float64 (target <= 1.5)",
         ratio("py-ndshm-spin", "py-numpy-floor", 100), 1.5, True),
        ("ndshm from Python vs the Python floor, 1 MiB (target <= 1.5)",
         ratio("py-ndshm-spin", "py-numpy-floor", big), 1.5, True),
        ("ndsharray / ndshm from Python, 1 MiB (target >= 15)", ratio("py-ndsharray", "py-ndshm-spin", big), 15, False),
        ("blocked reader vs its floor (futex), 100 float64", ratio("ndshm-wait", "floor-futex", 100), None, True),
    ]
    print("Ratios of medians:")
    for label, r, t, le in targets:
        if r is None:
            print(f"- n/a    {label}")
            continue
        ok = "" if t is None else ("met    " if (r <= t if le else r >= t) else "MISSED ")
        print(f"- {ok}{label}: {r:.2f}")
    print()
    for r in rows:
        if r["impl"] == "bandwidth":
            print(f"- snapshot copy of {r['bytes'] >> 20} MiB: {r['snapshot_gbs']:.1f} GB/s, "
                  f"memcpy {r['memcpy_gbs']:.1f} GB/s")


if __name__ == "__main__":
    main()
