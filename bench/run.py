#!/usr/bin/env python3
"""Runs every benchmark program and prints one table: operation, size, ndshm, the
system-call floor, each peer, and the ratios, then checks the targets.

    python3 bench/run.py [--quick] [--write docs/BENCHMARKS.md]

Builds the release library and bench/bench.c, installs the peers with pip where missing
(SharedArray, cdxcore; multiprocessing.shared_memory is in Python), runs bench.c (ndshm
and the floor, interleaved) and bench_py.py (the Python binding and the peers).
Times are medians of many repetitions in microseconds, [min-max] beside them.
"""

import importlib.util
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = "--quick" in sys.argv
PEERS = {"SharedArray": "SharedArray", "cdxcore": "cdxcore"}


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def build():
    sh(["cargo", "build", "-q", "--release", "--lib", "--manifest-path", str(ROOT / "Cargo.toml")])
    # The Python binding's compiled fast path, in place (NDSHM_NO_EXT=1 measures ctypes alone).
    sh(["make", "-s", "-C", str(ROOT), "python-ext", f"PYTHON={sys.executable}"])
    lib = ROOT / "target" / "release"
    out = ROOT / "target" / "bench"
    (out / "lib").mkdir(parents=True, exist_ok=True)
    soname = sh(["readelf", "-d", str(lib / "libndshm.so")], capture_output=True, text=True).stdout
    soname = soname.split("Library soname: [")[1].split("]")[0]
    for link in ("libndshm.so", soname):
        p = out / "lib" / link
        if p.is_symlink() or p.exists():
            p.unlink()
        p.symlink_to(lib / "libndshm.so")
    sh(["cc", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}", str(ROOT / "bench/bench.c"),
        f"-L{out / 'lib'}", "-lndshm", f"-Wl,-rpath,{out / 'lib'}", "-o", str(out / "bench")])
    return out / "bench", lib / "libndshm.so"


def install_peers():
    missing = [pkg for mod, pkg in PEERS.items() if importlib.util.find_spec(mod) is None]
    if missing:
        print(f"installing peers: {' '.join(missing)}", file=sys.stderr)
        sh([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *missing])


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def fmt_us(r):
    if r is None:
        return "-"
    m = r["median_us"]
    if m >= 1000:
        return f"{m / 1000:.2f} ms"
    return f"{m:.1f} µs"


def table(rows):
    by = {}
    for r in rows:
        by.setdefault((r["op"], r["size"]), {})[r["impl"]] = r
    impls = ["ndshm", "floor", "ndshm (sparse)", "SharedArray", "mp.shared_memory", "cdxcore"]
    lines = ["| operation | size | " + " | ".join(impls) + " | ndshm / floor | ndshm / best peer (sparse vs sparse) |",
             "|---|---|" + "---|" * len(impls) + "---|---|"]
    for (op, size), d in by.items():
        nd = d.get("ndshm")
        cells = [fmt_us(d.get(i)) for i in impls]
        ratio_floor = f"{nd['median_us'] / d['floor']['median_us']:.2f}" if nd and "floor" in d else "-"
        peers = [d[p]["median_us"] for p in ("SharedArray", "mp.shared_memory", "cdxcore") if p in d]
        # The peers do not reserve memory: compare with ndshm doing the same (sparse).
        mine = d.get("ndshm (sparse)", nd)
        ratio_peer = f"{mine['median_us'] / min(peers):.2f}" if mine and peers else "-"
        lines.append(f"| {op} | {size} | " + " | ".join(cells) + f" | {ratio_floor} | {ratio_peer} |")
    return "\n".join(lines), by


def targets(by):
    """(description, ratio, limit, ok) for each target of the benchmarks issue."""
    out = []

    def ratio(op, size, a, b):
        d = by.get((op, size), {})
        return d[a]["median_us"] / d[b]["median_us"] if a in d and b in d else None

    for size in ("4 KiB", "64 MiB"):
        out.append((f"C attach+release vs floor, {size}", ratio("attach+release", size, "ndshm", "floor"), 1.3))
        out.append((f"C create+release+delete (reserved) vs floor, {size}",
                    ratio("create+release+delete (reserved)", size, "ndshm", "floor"), 1.3))
        for peer in ("SharedArray", "mp.shared_memory"):
            out.append((f"Python attach vs {peer}, {size}", ratio("py attach+release", size, "ndshm", peer), 1.0))
            out.append((f"Python create+delete (sparse, as {peer} does) vs {peer}, {size}",
                        ratio("py create+delete", size, "ndshm (sparse)", peer), 1.0))
    out.append(("list 1000 arrays vs floor", ratio("list 1000 arrays", "-", "ndshm", "floor"), 1.5))
    for label in sorted({size for op, size in by if op.startswith("py list")}, key=lambda s: int(s.split()[0].replace(",", ""))):
        out.append((f"Python list per entry vs SharedArray.list, {label} (each its own)",
                    ratio("py list per entry", label, "ndshm", "SharedArray"), 1.0))
        out.append((f"Python list per entry vs SharedArray.list, {label} (the same SharedArray files)",
                    ratio("py list per entry, same SharedArray files", label, "ndshm", "SharedArray"), 1.0))
    return [(d, r, lim, r is not None and r <= lim) for d, r, lim in out]


def main():
    t0 = time.time()
    bench, lib = build()
    install_peers()
    env = dict(os.environ, NDSHM_LIBRARY=str(lib), PYTHONPATH=str(ROOT / "bindings" / "python"))
    args = ["--quick"] if QUICK else []
    rows = run_json([str(bench), *args])
    rows += run_json([sys.executable, str(ROOT / "bench/bench_py.py"), *args], env=env)
    tab, by = table(rows)
    checks = targets(by)
    check_lines = [f"- {'met   ' if ok else 'MISSED'} {d}: {r:.2f} (target ≤ {lim})" if r is not None
                   else f"- n/a    {d}" for d, r, lim, ok in checks]
    machine = f"{platform.node()}: {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}"
    cmd = "make bench" + ("-quick" if QUICK else "")
    report = (f"Command: `{cmd}` ({'quick' if QUICK else 'full'} run, {time.time() - t0:.0f} s), "
              f"machine: {machine}\n\n{tab}\n\nTargets (ratios from this run):\n\n" + "\n".join(check_lines) + "\n")
    print(report)
    if "--write" in sys.argv:
        from sections import replace_section

        replace_section(sys.argv[sys.argv.index("--write") + 1], "bench", report)


if __name__ == "__main__":
    main()
