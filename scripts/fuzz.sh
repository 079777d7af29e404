#!/usr/bin/env bash
# Fuzzes what strangers send: raw messages (parse, classify, reply text), addresses and
# tokens, and the SMTP session fed arbitrary client bytes. libFuzzer through cargo-fuzz, with
# no sanitizer (the toolchain is stable; the code is safe Rust, so what is looked for is a
# panic, an abort, a hang or runaway memory).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     SECONDS per target (default 60); all targets
#   FUZZ_BUILD_ONLY=1 scripts/fuzz.sh          only install cargo-fuzz and build the targets
#
# Each target starts from its seeds (fuzz/seeds/TARGET, and for messages the project's own
# fixtures) and keeps what it learns in fuzz/corpus/TARGET (not committed). A finding is saved
# in fuzz/artifacts/TARGET and the script fails; make it a fixture in fixtures/hostile/ (the
# tests run every file there) and fix the cause. Totals go to stdout for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(message tokens smtp_session)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install --locked --quiet cargo-fuzz@0.13.2
fi

cd fuzz
cargo fuzz build --sanitizer none >&2
if [ -n "${FUZZ_BUILD_ONLY:-}" ]; then
  exit 0
fi
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t" logs
  extra=("seeds/$t")
  case "$t" in
    message) extra+=("../fixtures/reply-text" "../fixtures/hostile") ;;
  esac
  started=$(date +%s)
  log="logs/$t.log"
  if cargo fuzz run --sanitizer none "$t" "corpus/$t" "${extra[@]}" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=262144 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    result="ok"
  else
    result="FINDING (see fuzz/$log and fuzz/artifacts/$t/)"
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  echo "fuzz $t: ${seconds}s, ${runs:-?} runs, $(ls "corpus/$t" | wc -l) corpus entries, $(( $(date +%s) - started ))s wall: $result"
done
exit $status
