#!/bin/sh
# tests/t_bench_cfs.sh - bench/cfs's options: a thread count it does not
# run, --threads with --markdown (a partial table is never written), a
# round count out of range, an unknown option and a missing value are
# refused with what and why, exit 1, and write nothing; a short real run
# (one round, no agent column) prints its tables and, with --markdown,
# replaces its own section of the file and nothing else. TAP output.
set -u
bench_name=cfs
bench_dirs='/tmp/bench-cfs.*'
# shellcheck source=tests/bench_tap.sh
. "$(dirname "$0")/bench_tap.sh"

# refused ARGS... -- WHY: exit 1, WHY on stderr, the file and /tmp untouched
refused() {
	why=$1; shift
	run "$bench" "$@"
	[ "$rc" -eq 1 ] && grep -q -- "$why" "$tmp/err" && unchanged && [ "$(run_dirs)" -eq "$before_dirs" ]
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
[ "$(run_dirs)" -eq "$before_dirs" ]
ok $? "its run directories under /tmp removed"
finish
