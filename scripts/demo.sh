#!/usr/bin/env bash
# The main job of ndshm in one minute: one process creates a named array in shared
# memory and fills it; a separate process attaches to the very same bytes and reads
# them; the listing shows it; then it is deleted.
set -euo pipefail
bin=${1:-build}
name="shm://ndshm-demo-$$"
trap '"$bin/consumer" "$name" --delete >/dev/null 2>&1 || true' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. A C process creates $name, a 1000 x 1000 float64 array (8 MB), fills it, and exits"
"$bin/producer" "$name" 1000 1000

say "2. A separate C process attaches to the same memory (read-only, no copy) and checks it"
"$bin/consumer" "$name"
echo "   (expected checksum: sum over i,j of i + j/1000 = 499999500.000000)"

say "3. A Python process attaches the same bytes as a numpy array (no copy) and checks them"
python3 - "$name" <<'PY'
import sys, numpy as np, ndshm
a = ndshm.attach(sys.argv[1], ro=True, validate_shape=(1000, 1000), validate_dtype=np.float64)
i, j = np.indices(a.shape)
ok = np.array_equal(a, i + j / 1000.0)
print(f"python: attached {a.base.name}: {a.dtype} {a.shape}, checksum (sum) {a.sum():.6f}, "
      f"every element as expected: {ok}")
sys.exit(0 if ok else 1)
PY

say "4. A Fortran process attaches it too (row-major seen as the transposed Fortran array)"
if [[ -x "$bin/fortran_example" ]]; then
  "$bin/fortran_example" "$name"
else
  echo "   skipped: gfortran is not installed (apt-get install gfortran, then make demo)"
fi

say "5. The listing of shared memory shows it, with its creator (gone by now)"
"$bin/list" | sed -n "1p;\#^$name #p"

say "6. It is deleted; attaching again fails with a clear message"
"$bin/consumer" "$name" --delete | tail -1
if "$bin/consumer" "$name" 2>&1 | sed 's/^/   /'; then exit 1; fi
trap - EXIT
say "Done: one segment, read by C, Python and Fortran processes (and Rust, C++ and Julia)."
