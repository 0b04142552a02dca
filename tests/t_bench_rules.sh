#!/bin/sh
# tests/t_bench_rules.sh - bench/rules: an unknown option or a missing
# value is refused with its usage, exit 1, nothing written; a short real
# run (--quick) measures part A in its 9 processes of its own (every row,
# the paired ratio and the wasm target) and part B through a real agent,
# and with --markdown replaces its own section of the file and nothing
# else. TAP output.
set -u
bench_name=rules
bench_dirs='/tmp/gov-bench-rules.*'
# shellcheck source=tests/bench_tap.sh
. "$(dirname "$0")/bench_tap.sh"

for args in "--bogus" "--markdown" "--quick --markdown"; do
	# shellcheck disable=SC2086 # the words are the options
	run "$bench" $args
	[ "$rc" -eq 1 ] && grep -q "usage:" "$tmp/err" && unchanged
	ok $? "bench/rules $args: refused with its usage, exit 1, nothing written"
done

run "$bench" --quick
grep -q '^A\. .* in 9 processes, each 11 runs' "$tmp/out"
ok $(( rc != 0 || $? != 0 )) "--quick: part A in 9 processes (exit $rc)"
rows=$(grep -c -E '^\| (plain C|eBPF, librte_bpf|wasm, )[^|]*\| [0-9.]+ \| [0-9.]+\.\.[0-9.]+ \| [0-9.]+x \| [0-9.]+x \| [0-9.]+\.\.[0-9.]+ \|$' "$tmp/out")
[ "$rows" -eq 5 ]
ok $? "... its five rows, each with ns, spread and the paired ratio ($rows)"
grep -q '^| plain C through gov_dynrule_run (fault policy included) | [0-9.]* | [0-9.]*\.\.[0-9.]* | [0-9.]*x | 1\.00x | 1\.00\.\.1\.00 |$' "$tmp/out"
ok $? "... the runner's paired ratio to itself is 1.00 in every process"
grep -q -E '^Target wasm <= 1\.5x plain C, .*, paired: (met|missed) \([0-9.]+x; [0-9.]+\.\.[0-9.]+x over the processes\)' "$tmp/out"
ok $? "... the wasm target judged on the paired ratio, with its range"
! grep -q "part A's process" "$tmp/err"
ok $? "... no process of part A failed"
grep -q -E '^\| eBPF JIT in the program \(placement process\) \| [0-9.]+ ' "$tmp/out" &&
	grep -q -E '^\| wasm in the agent \| [0-9.]+ ' "$tmp/out"
ok $? "... part B measured through the agent, in the program and in the agent"

run "$bench" --quick --markdown "$md"
head -3 "$md" | cmp -s - "$tmp/before.md" &&
	[ "$(grep -c '^<!-- bench/rules: begin -->$' "$md")" -eq 1 ] && grep -q '^Target wasm' "$md"
ok $(( rc != 0 || $? != 0 )) "--markdown: its section added after what the file held (exit $rc)"
run "$bench" --quick --markdown "$md"
[ "$(grep -c '^<!-- bench/rules: begin -->$' "$md")" -eq 1 ] && [ "$(grep -c '^Target wasm' "$md")" -eq 1 ] &&
	head -3 "$md" | cmp -s - "$tmp/before.md"
ok $(( rc != 0 || $? != 0 )) "--markdown again: the section replaced, not added twice (exit $rc)"
[ "$(run_dirs)" -eq "$before_dirs" ]
ok $? "its run directories under /tmp removed"
finish
