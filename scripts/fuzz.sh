#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo fuzz) of every parser and every file the tool
# reads that a person or an attacker can write. Each target runs SECONDS_PER_TARGET seconds
# (default 30) from a seed corpus made here from testdata/ and fuzz/regressions/, and prints how
# many inputs it executed. A crash fails the script; its input is in fuzz/artifacts/TARGET/:
# move it to fuzz/regressions/TARGET/ with a name saying what it was, and `cargo test`
# (tests/fuzz_corpus.rs) replays it from then on.
#
# Needs a nightly toolchain (libFuzzer's instrumentation); without one it says so and exits 0,
# so CI on a machine without nightly still passes.
#
# scripts/fuzz.sh [TARGET ...]        all targets when none is named
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECONDS_PER_TARGET:-30}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: skipped: no nightly toolchain (cargo +nightly), which libFuzzer needs" >&2
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install -q --locked cargo-fuzz@0.13.2
fi

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config_file config_json config_dropin env_file unit_file
  k3s_config argv saved_plan backup_manifest summarize scan)

work=target/fuzz-corpus
rm -rf "$work"
mkdir -p "$work"
nodes=testdata/nodes

# seed TARGET [PREFIX-BYTE] < list of files: copies each into the target's corpus.
seed() {
  local t=$1 prefix=${2:-} dir="$work/$1" n=0 f
  mkdir -p "$dir"
  while IFS= read -r f; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    if [ -n "$prefix" ]; then
      { printf "\\x$prefix"; cat "$f"; } >"$dir/seed-$n"
    else
      cp "$f" "$dir/seed-$n"
    fi
  done
}

find $nodes -path '*/var/lib/kubelet/config.yaml' | seed config_file
find $nodes -name '*.json' -path '*kubelet*' ! -path '*/proc/*' | seed config_json
find $nodes -path '*.d/*' -name '*.conf' ! -path '*/systemd/*' | seed config_dropin
find $nodes \( -name '*.env' -o -path '*/default/kubelet' -o -path '*/sysconfig/kubelet' \) | seed env_file
find $nodes -name '*.service' | seed unit_file 00
find $nodes -path '*/systemd/*' -name '*.conf' | seed unit_file 01
find $nodes -path '*/rancher/*' -name '*.yaml' | seed k3s_config
mkdir -p "$work/argv"
i=0
for f in $(find $nodes -name cmdline); do
  i=$((i + 1))
  tr '\0' '\n' <"$f" >"$work/argv/seed-$i"
done
find testdata/repos testdata/scan -type f -name '*.yaml' | seed scan 00
find testdata/repos testdata/scan -type f -name '*.json' | seed scan 01
find testdata/repos -type f -path '*/templates/*' | seed scan 02

# Saved plans, records and a backup manifest, made by the tool itself on copies of the trees.
bin=target/debug/kubelet-remediate
[ -x $bin ] || cargo build -q
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$work/saved_plan" "$work/summarize" "$work/backup_manifest"
for t in kubeadm-deb eks-al2 config-dir-override k3s-agent false-in-two-places; do
  $bin plan --root $nodes/$t --offline --out "$work/saved_plan/$t" >/dev/null 2>&1 || true
  $bin plan --root $nodes/$t --offline --output json >"$work/summarize/$t" 2>/dev/null || true
done
cp -a $nodes/kubeadm-deb "$tmp/root"
$bin apply --root "$tmp/root" --offline --yes --no-restart >/dev/null 2>&1 || true
for m in "$tmp"/root/var/lib/kubelet-remediate/backups/*/manifest.json; do
  # The target restores the set named 20261207T000000Z-1.
  sed -E 's/"id": *"[^"]*"/"id": "20261207T000000Z-1"/' "$m" >"$work/backup_manifest/seed-1"
done

# Build every target first: a build error is not a crash.
if ! (cd fuzz && cargo +nightly fuzz build -s none -a) >"$tmp/build.log" 2>&1; then
  tail -40 "$tmp/build.log" >&2
  echo "fuzz: the fuzz targets do not build" >&2
  exit 1
fi

for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  [ -d fuzz/regressions/$t ] && cp fuzz/regressions/$t/* "$work/$t/" 2>/dev/null || true
  echo "fuzz: $t for ${secs}s from $(ls "$work/$t" | wc -l) seeds" >&2
  log="$tmp/$t.log"
  if ! (cd fuzz && cargo +nightly fuzz run -s none -a "$t" "../$work/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz: $t FAILED: the input is under fuzz/artifacts/$t/; move it to fuzz/regressions/$t/" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz: $t ok: ${execs:-?} executions, $cov" >&2
done
