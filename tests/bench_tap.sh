# shellcheck shell=sh disable=SC2034,SC2154
# tests/bench_tap.sh - what the tests of a benchmark share, sourced with
# bench_name (cfs: build/bench/cfs) and bench_dirs (the pattern of the run
# directories it makes under /tmp) set:
#   $bench          build/bench/NAME (bails out when it is not built)
#   $tmp            a directory of the test's own, removed at exit
#   $md             a file with a few lines of notes (copy: $tmp/before.md)
#   unchanged       whether $md is as it was
#   run_dirs        how many of the benchmark's run directories there are
#   $before_dirs    ... when the test began
# and tap.sh.
top=$(cd "$(dirname "$0")/.." && pwd)
bench=$top/build/bench/$bench_name
tmp=$(mktemp -d "/tmp/bench$bench_name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "$top/tests/tap.sh"

if [ ! -x "$bench" ]; then
	echo "Bail out! build first: make all tests"
	exit 1
fi

md=$tmp/BENCH.md
printf '# notes\n\nkept as it is\n' >"$md"
cp "$md" "$tmp/before.md"
unchanged() { cmp -s "$md" "$tmp/before.md"; }
# shellcheck disable=SC2086,SC2012 # the pattern is globbed; names are ours
run_dirs() { ls -d $bench_dirs 2>/dev/null | wc -l; }
before_dirs=$(run_dirs)
