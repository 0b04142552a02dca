#!/bin/sh
# tests/t_rw_unwind.sh - unwinding through trampolines: a C++ thread that
# pthread_cancel ends while it is blocked in libc's read() runs the
# destructors of its frames, with libc rewritten on disk by govrewrite
# (the trampoline's fast path), rewritten in memory at load time and
# patched lazily (the slow path, govrt's entry and the gate), and with the
# read trapped by Syscall User Dispatch (through govrt's SIGSYS handler).
# Without govrt registering the trampolines' unwind rows the destructors
# are skipped: that run shows what the test would catch. TAP for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
gr=${GOVREWRITE:-$top/build/bin/govrewrite}
lib=${GOVRT_LIBDIR:-$top/build/lib}
tmp=$(mktemp -d /tmp/rw_unwind.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$top/tests/tap.sh"

for f in "$gr" "$lib/libgovrt.so.1"; do
	if [ ! -e "$f" ]; then
		echo "Bail out! $f is missing: run make"
		exit 1
	fi
done
cd "$tmp" || exit 1
mkdir lib run
export GOV_RUN_DIR="$tmp/run" LC_ALL=C
unset GOV_RESOURCE GOV_FAIL GOV_SYSCALLS GOV_REWRITE LD_PRELOAD

g++ -O2 "$top/tests/rw/cancel.cc" -o cancel -lpthread && ./cancel >want.out
grep -q "destructor inner ran" want.out && grep -q "destructor outer ran" want.out &&
	grep -q "canceled=1" want.out
ok $? "tests/rw/cancel.cc: natively, cancelling the thread blocked in read runs both destructors"
run "$gr" -q /lib/x86_64-linux-gnu/libc.so.6 lib/libc.so.6
ok $rc "govrewrite libc.so.6"

cancelled() { # WHAT ENV...: runs ./cancel with ENV, checks both destructors ran
	what=$1
	shift
	env "$@" timeout 30 ./cancel >"$tmp/out" 2>"$tmp/err"
	st=$?
	[ $st -eq 0 ] && grep -q "worker in read: yes" "$tmp/out" &&
		grep -q "destructor inner ran" "$tmp/out" && grep -q "destructor outer ran" "$tmp/out" &&
		grep -q "canceled=1" "$tmp/out"
	ok $? "$what: the cancelled thread's destructors ran (status $st)"
}

env LD_LIBRARY_PATH="$tmp/lib:$lib" timeout 30 ./cancel >nogovrt.out 2>&1
grep -q "canceled=1" nogovrt.out && ! grep -q "destructor" nogovrt.out
ok $? "control: libc rewritten on disk, no govrt to register unwind rows: the destructors are skipped"
cancelled "libc rewritten on disk, govrt preloaded (fast path)" \
	LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH="$tmp/lib:$lib"
cancelled "libc rewritten on disk, Syscall User Dispatch on (SIGSYS handler, gate)" \
	GOV_SYSCALLS=sud LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH="$tmp/lib:$lib"
cancelled "libc rewritten in memory at load time (slow path, entry, gate)" \
	GOV_SYSCALLS=exhaustive GOV_REWRITE=libc LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH="$lib"
cancelled "read patched lazily at its first trap" \
	GOV_SYSCALLS=exhaustive LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH="$lib"
cancelled "read trapped by Syscall User Dispatch, nothing rewritten" \
	GOV_SYSCALLS=sud LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH="$lib"
GOV_LOG=debug LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH="$tmp/lib:$lib" ./cancel >/dev/null 2>dbg.err
grep -q 'unwind entries for the trampolines at' dbg.err
ok $? "govrt says it registered the rewritten libc's unwind entries"
finish
