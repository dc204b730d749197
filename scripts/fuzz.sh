#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and fails if any of them
# finds a crash, a panic, a timeout or an out-of-memory input (`make fuzz`).
#
#   FUZZ_SECONDS=20     time per target, in seconds (libFuzzer's -max_total_time)
#   FUZZ_TARGETS="..."  which targets (default: all four)
#   FUZZ_OPTIONAL=1     exit 0 with "skipped" when nightly Rust or cargo-fuzz is missing
#                       (without it, a missing tool is an error)
#
# Needs a rustup nightly toolchain and cargo-fuzz (cargo install --locked cargo-fuzz).
# Each target first replays its checked-in corpus fuzz/corpus/TARGET (seeds and any
# crash-* reproducers, read only), then mutates; new inputs go to fuzz/target/corpus/
# TARGET (kept between runs) and crashes to fuzz/artifacts/TARGET/.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
read -r -a targets <<<"${FUZZ_TARGETS:-v1_header sharedarray_trailer name shape npy_header}"

unavailable() {
  if [[ ${FUZZ_OPTIONAL:-} == 1 ]]; then
    echo "fuzz: skipped: $1"
    exit 0
  fi
  echo "fuzz: $1 (set FUZZ_OPTIONAL=1 to skip instead)" >&2
  exit 1
}
if ! command -v rustup >/dev/null 2>&1 || ! cargo +nightly --version >/dev/null 2>&1; then
  unavailable "needs a nightly Rust toolchain through rustup (rustup toolchain install nightly)"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  unavailable "needs cargo-fuzz (cargo install --locked cargo-fuzz)"
fi

# Longest input worth generating for each target.
max_len() {
  case $1 in
    v1_header) echo 4096 ;;            # the 1024 checked bytes, or a whole header page
    sharedarray_trailer) echo 1024 ;;  # 8-byte file size + the last 548 bytes
    name) echo 4200 ;;                 # past the 4095-byte path limit
    shape) echo 512 ;;                 # item size + 40 dimensions, 8 bytes each
    npy_header) echo 1024 ;;           # a selector byte + a short header dict
    *) echo 4096 ;;
  esac
}

cargo +nightly fuzz build || { echo "fuzz: build failed" >&2; exit 1; }

failed=()
for t in "${targets[@]}"; do
  echo "== fuzz: $t for ${seconds}s"
  mkdir -p "fuzz/target/corpus/$t" "fuzz/corpus/$t"
  if ! cargo +nightly fuzz run "$t" "fuzz/target/corpus/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 \
    -print_final_stats=1; then
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  echo "fuzz: reproducers are in fuzz/artifacts/<target>/; replay one with" >&2
  echo "      cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each: no crash"
