#!/bin/sh
# tests/t_sud_coreutils.sh - Debian's coreutils (ls, cat, sort, sha256sum,
# cp; sort also with threads), never rebuilt or rewritten on disk, run with libgovrt preloaded,
# GOV_SYSCALLS=exhaustive and GOV_REWRITE=libc, under a real govagent whose
# rule traces every syscall: their output is byte-identical to the
# original's, and the per-syscall counts govrt reports equal `strace -f` of
# the original on the same command, from the end of the dynamic loader's
# work (the munmap of ld.so.cache) on.
#
# libgovrt is preloaded through libgovrt-preload.so so that it is
# initialised before the program's other libraries (libselinux's
# constructor makes syscalls in ls and cp); libc is scanned in a forked
# child, so the program's heap is untouched by the engine.
#
# Where they may differ, and why (diag lines show each difference): brk
# (by at most 2) and getrandom (by at most 1). Connecting to the agent
# before main allocates govrt's connection, its copy of the decision table
# and its watcher thread's TLS from the program's heap: malloc's first
# brk(NULL), brk(grow) and its tcache key's getrandom happen then, inside
# govrt, and the program's first malloc finds them done. Any other
# difference fails. TAP output for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
govagent=${GOVAGENT:-$top/build/bin/govagent}
lib=${GOVRT_LIBDIR:-$top/build/lib}
tmp=$(mktemp -d /tmp/sud-coreutils.XXXXXX)
agent=""
cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/tests/tap.sh"

for f in "$govagent" "$lib/libgovrt.so" "$lib/libgovrt-preload.so"; do
	if [ ! -e "$f" ]; then
		echo "Bail out! $f is missing: run make"
		exit 1
	fi
done
if ! command -v strace >/dev/null; then
	echo "1..0 # SKIP strace is not installed"
	exit 0
fi

export LC_ALL=C
mkdir "$tmp/run"
export GOV_RUN_DIR="$tmp/run"
unset GOV_FAIL GOV_SYSCALLS GOV_REWRITE GOV_REPORT

# a rule that traces every syscall of include/gov/syscalls.def
{
	echo "verdicts:"
	sed -n 's/^GOV_SYSCALL_ENTRY([0-9]*, *\([a-z0-9_]*\))$/  - syscall: \1\n    action: trace/p' \
		"$top/include/gov/syscalls.def"
} >"$tmp/trace-all.yaml"
"$govagent" --resource cu --rules "$tmp/trace-all.yaml" 2>"$tmp/agent.log" &
agent=$!
w=0
while [ ! -S "$tmp/run/cu.sock" ] && [ $w -lt 300 ]; do sleep 0.01; w=$((w + 1)); done
[ -S "$tmp/run/cu.sock" ]
ok $? "govagent traces every syscall ($(grep -c 'syscall:' "$tmp/trace-all.yaml") rules)"

seq 1 3000 | sed 's/^\(.*\)$/line \1 of the input/' | sort -R --random-source=/dev/zero >"$tmp/input.txt"
mkdir "$tmp/dir"
cp "$tmp/input.txt" "$tmp/dir/a"
cp "$tmp/input.txt" "$tmp/dir/b"

# strace -f text -> "name count" for the syscalls after ld.so's own work
strace_counts() {
	awk '
	/resumed>/ { next }
	/^[0-9]+ +(---|\+\+\+)/ { next }
	{
		line = $0; sub(/^[0-9]+ +/, "", line)
		name = line; sub(/\(.*/, "", name)
		if (!cache && line ~ /^openat\(AT_FDCWD, "\/etc\/ld\.so\.cache"/) { want = 1; next }
		if (want && name == "mmap") { a = line; sub(/.*= /, "", a); cache = a; want = 0; next }
		if (!started) {
			if (cache && index(line, "munmap(" cache ",") == 1) started = 1
			next
		}
		n[name]++
	}
	END { for (k in n) print k, n[k] }' "$1" | sort
}
# govrt's report -> "name count", summed over processes
report_counts() {
	sed -n 's/^govrt-report pid=[0-9]* syscall=\([a-z0-9_?]*\) total=\([0-9]*\) .*/\1 \2/p' "$1" |
		awk '{ n[$1] += $2 } END { for (k in n) print k, n[k] }' | sort
}

check() { # NAME CMD...
	name=$1
	shift
	rm -f "$tmp/dest"
	strace -f -o "$tmp/$name.strace" "$@" >"$tmp/$name.orig" 2>&1
	orig_rc=$?
	[ "$name" = cp ] && mv "$tmp/dest" "$tmp/dest.orig"
	: # (sort-threads: same command, separate name)
	env LD_PRELOAD="$lib/libgovrt-preload.so" GOV_RESOURCE=${resource-cu} GOV_SYSCALLS=exhaustive \
		GOV_REWRITE=libc GOV_REPORT="$tmp/$name.report" "$@" >"$tmp/$name.gov" 2>&1
	gov_rc=$?
	[ $orig_rc -eq $gov_rc ] && cmp -s "$tmp/$name.orig" "$tmp/$name.gov" &&
		{ [ "$name" != cp ] || cmp -s "$tmp/dest" "$tmp/dest.orig"; }
	ok $? "$name: same output and exit status as the original ($orig_rc)"
	strace_counts "$tmp/$name.strace" >"$tmp/$name.want"
	report_counts "$tmp/$name.report" >"$tmp/$name.got"
	join -a 1 -a 2 -e 0 -o 0,1.2,2.2 "$tmp/$name.want" "$tmp/$name.got" >"$tmp/$name.cmp"
	bad=$(awk -v loose=" ${loose:-} " '$2 != $3 && !($1 == "brk" && $2 - $3 >= 0 && $2 - $3 <= 2) &&
		!($1 == "getrandom" && $2 - $3 >= 0 && $2 - $3 <= 1) &&
		index(loose, " " $1 " ") == 0' "$tmp/$name.cmp")
	awk -v cmd="$name" '$2 != $3 { printf "# %s: %s: strace %d, govrt %d\n", cmd, $1, $2, $3 }' \
		"$tmp/$name.cmp"
	total=$(awk '{ s += $3 } END { print s + 0 }' "$tmp/$name.cmp")
	same=$(awk '$2 == $3 { s += $3 } END { print s + 0 }' "$tmp/$name.cmp")
	[ -z "$bad" ] && [ "$total" -gt 0 ]
	ok $? "$name: govrt's per-syscall counts equal strace's ($same of $total calls; differences only where explained)"
	paths=$(sed -n 's/^govrt-report pid=[0-9]* \(disk=.*\)/\1/p' "$tmp/$name.report" | head -1)
	echo "# $name: $paths"
	grep -q "load=[1-9]" "$tmp/$name.report"
	ok $? "$name: its syscalls went through libc rewritten in memory"
}

check ls ls -la "$tmp/dir"
check cat cat "$tmp/input.txt"
check sort sort "$tmp/input.txt"
check sha256sum sha256sum "$tmp/input.txt" "$tmp/dir/a"
check cp cp "$tmp/input.txt" "$tmp/dest"
# threads: sort sorts a large input with a helper thread, whose syscalls
# strace -f counts too. No agent here: its watcher thread would make the
# process threaded before main (glibc's one-time thread set-up, a malloc
# arena). Two runs of a threaded program cannot agree on futex (how often
# the threads met) nor on the mmap, munmap and mprotect of malloc's arena
# for the new thread (how much of its 64 MiB alignment it trims depends
# on where mmap put it): those are shown, not compared.
seq 1 200000 | sort -R --random-source=/dev/zero >"$tmp/big.txt"
loose="futex mmap munmap mprotect" resource="" check sort-threads sort --parallel=4 "$tmp/big.txt"
grep -q "syscall=clone3 total=[1-9]" "$tmp/sort-threads.report"
ok $? "sort-threads: it did start threads"

# a libc rewritten on disk by govrewrite: with Syscall User Dispatch on,
# its trampolines' syscalls (decided by rewritten.c) are counted as the
# disk path, not governed twice
govrewrite=${GOVREWRITE:-$top/build/bin/govrewrite}
if [ -x "$govrewrite" ]; then
	mkdir "$tmp/rwlib"
	"$govrewrite" /lib/x86_64-linux-gnu/libc.so.6 "$tmp/rwlib/libc.so.6" 2>"$tmp/rw.err"
	env LD_LIBRARY_PATH="$tmp/rwlib" LD_PRELOAD="$lib/libgovrt-preload.so" GOV_SYSCALLS=exhaustive \
		GOV_REPORT="$tmp/disk.rep" cat "$tmp/input.txt" >"$tmp/disk.out" 2>&1
	cmp -s "$tmp/disk.out" "$tmp/input.txt" && grep -q "^govrt-report pid=[0-9]* disk=[1-9]" "$tmp/disk.rep"
	ok $? "cat with libc rewritten on disk: same output, syscalls counted on the disk path"
	echo "# $(head -1 "$tmp/disk.rep" 2>/dev/null)"
fi

calls=$("$govagent" --stats cu 2>/dev/null | sed -n 's/^{[^[]*"calls":\([0-9]*\).*/\1/p')
reported=$(cat "$tmp/ls.report" "$tmp/cat.report" "$tmp/sort.report" "$tmp/sha256sum.report" \
	"$tmp/cp.report" | sed -n 's/^govrt-report pid=[0-9]* syscall=[a-z0-9_?]* total=\([0-9]*\) .*/\1/p' |
	awk '{ s += $1 } END { print s + 0 }')
[ "${calls:-0}" -gt 100 ] && [ "${calls:-0}" -eq "$reported" ]
ok $? "the agent traced exactly the syscalls govrt reports (${calls:-0} and $reported)"
finish
