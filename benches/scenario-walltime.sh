#!/usr/bin/env bash
# Wall time of every shipped scenario (or those named) on 1 and 2 threads,
# with the release binary, and whether both runs wrote byte-identical CSVs.
# Usage: benches/scenario-walltime.sh [NAME…]   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in scenarios/*.toml; do names+=("$(basename "$f" .toml)"); done
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-26s %12s %12s %9s  %s\n' scenario "1 thread s" "2 threads s" speed-up CSVs
for name in "${names[@]}"; do
  for t in 1 2; do
    start=$(date +%s.%N)
    RAYON_NUM_THREADS=$t ./target/release/shoplab run "scenarios/$name.toml" --quiet \
      --results "$out/$t" >/dev/null
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { print b - a }' > "$out/time-$t"
  done
  one=$(cat "$out/time-1"); two=$(cat "$out/time-2")
  d1=$(dirname "$(find "$out/1" -name runs.csv | head -1)")
  d2=$(dirname "$(find "$out/2" -name runs.csv | head -1)")
  same=identical
  for f in "$d1"/*.csv; do
    cmp -s "$f" "$d2/$(basename "$f")" || same="differ: $(basename "$f")"
  done
  printf '%-26s %12.1f %12.1f %8.2fx  %s\n' "$name" "$one" "$two" \
    "$(awk -v a="$one" -v b="$two" 'BEGIN { print a / b }')" "$same"
  rm -rf "$out/1" "$out/2"
done
