#!/bin/sh
# tests/t_bench_cfs.sh - bench/cfs's options: a thread count it does not
# run, --threads with --markdown (a partial table is never written), a
# round count out of range, an unknown option and a missing value are
# refused with what and why, exit 1, and write nothing; a short real run
# (one round, no agent column) prints its tables and, with --markdown,
# replaces its own section of the file and nothing else. TAP output.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bench=$top/build/bench/cfs
tmp=$(mktemp -d /tmp/benchcfs.XXXXXX)
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
dirs() { ls -d /tmp/bench-cfs.* 2>/dev/null | wc -l; }
before_dirs=$(dirs)

# refused ARGS... -- WHY: exit 1, WHY on stderr, the file and /tmp untouched
refused() {
	why=$1; shift
	run "$bench" "$@"
	[ "$rc" -eq 1 ] && grep -q -- "$why" "$tmp/err" && unchanged && [ "$(dirs)" -eq "$before_dirs" ]
	ok $? "bench/cfs $*: refused ($why), nothing written"
}
refused "--threads: one of 2, 4, 8, 16, 32" --threads 3
refused "--threads: one of 2, 4, 8, 16, 32" --threads many
refused "not written to --markdown" --threads 8 --markdown "$md"
refused "not written to --markdown" --markdown "$md" --threads 8
refused "--rounds: 1..64" --rounds 0
refused "--rounds: 1..64" --rounds 65
refused "usage:" --bogus
refused "usage:" --threads

run "$bench" --quick --no-agent --rounds 1 --threads 2
grep -q '^| 2 | ' "$tmp/out" && ! grep -q '^| 4 | ' "$tmp/out"
ok $(( rc != 0 || $? != 0 )) "--threads 2 --rounds 1: runs, one row per table for 2 threads (exit $rc)"

run "$bench" --quick --no-agent --rounds 1 --markdown "$md"
head -3 "$md" | cmp -s - "$tmp/before.md" &&
	grep -q '^<!-- cfs: begin -->$' "$md" && grep -q '^<!-- cfs: end -->$' "$md" &&
	[ "$(grep -c '^| 32 | ' "$md")" -eq 2 ]
ok $(( rc != 0 || $? != 0 )) "--markdown: its section added after what the file held, both tables (exit $rc)"
cp "$md" "$tmp/first.md"
run "$bench" --quick --no-agent --rounds 1 --markdown "$md"
[ "$(grep -c '^<!-- cfs: begin -->$' "$md")" -eq 1 ] && [ "$(grep -c '^| 32 | ' "$md")" -eq 2 ] &&
	head -3 "$md" | cmp -s - "$tmp/before.md"
ok $(( rc != 0 || $? != 0 )) "--markdown again: the section replaced, not added twice (exit $rc)"
[ "$(dirs)" -eq "$before_dirs" ]
ok $? "its run directories under /tmp removed"
finish
