#!/bin/sh
# tests/t_rw_noplt.sh - govrewrite --calls on code built with gcc -fno-plt:
# its calls of imported functions are `call *f@GOTPCREL(%rip)` through the
# GOT slot (GLOB_DAT), and a tail call is `jmp *f@GOTPCREL(%rip)`. Each
# becomes a call site; the program behaves as before without an agent, and
# under a real govagent deny and trace rules reach the slot calls and the
# tail call (PIE and non-PIE). TAP output for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
gr=${GOVREWRITE:-$top/build/bin/govrewrite}
govagent=${GOVAGENT:-$top/build/bin/govagent}
lib=${GOVRT_LIBDIR:-$top/build/lib}
tmp=$(mktemp -d /tmp/rw_noplt.XXXXXX)
agent=""
cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/tests/tap.sh"
has() { grep -qF -- "$1" "$2"; }

for f in "$gr" "$govagent" "$lib/libgovrt.so.1"; do
	if [ ! -e "$f" ]; then
		echo "Bail out! $f is missing: run make"
		exit 1
	fi
done
cd "$tmp" || exit 1
mkdir run
export GOV_RUN_DIR="$tmp/run" LC_ALL=C LD_LIBRARY_PATH="$lib"
unset GOV_RESOURCE GOV_FAIL GOV_SYSCALLS

agent_resource=np
. "$top/tests/agent.sh"

src="$top/tests/rw/noplt.c"
gcc -O2 -g -fno-plt "$src" -o np_pie && gcc -O2 -g -fno-plt -no-pie "$src" -o np_nopie
ok $? "tests/rw/noplt.c builds with -fno-plt, PIE and non-PIE"
objdump -d np_pie | grep -q 'call.*\*.*(%rip).*<malloc@' &&
	objdump -d np_pie | grep -A1 '<tail_rmdir>:' | grep -q 'jmp.*\*.*(%rip).*<rmdir@'
ok $? "the compiler called malloc through its GOT slot and tail-called rmdir through its slot"
./np_pie 5 >want.out
calls=malloc,free,getppid,rmdir
for v in pie nopie; do
	run "$gr" --calls $calls --syscalls none --report "rep_$v" "np_$v" "rw_$v"
	ok $rc "govrewrite --calls $calls np_$v"
	for f in malloc free getppid; do
		grep -q "	call	$f	-1	patched	-	main	" "rep_$v" || { echo "# $v: no $f site"; false; } || break
	done
	ok $? "$v: the slot calls of malloc, free and getppid in main are patched call sites"
	grep -q '	call	rmdir	-1	patched	-	tail_rmdir	' "rep_$v"
	ok $? "$v: the tail call jmp *rmdir@GOTPCREL in tail_rmdir is a patched call site"
	! has '--calls' "$tmp/err"
	ok $? "$v: no 'no such function' warning for functions called only through slots"
	./"rw_$v" 5 >got.out 2>"$tmp/err" && cmp -s want.out got.out
	ok $? "$v: the rewritten program prints the same without an agent"
done
objdump -d rw_pie | grep -A1 '<tail_rmdir>:' | grep -q 'jmp  *[0-9a-f]* <'
ok $? "the tail call's bytes are now a jmp rel32 to a trampoline"

start_agent "$top/tests/rw/noplt.yaml"
for v in pie nopie; do
	GOV_RESOURCE=np ./"rw_$v" 7 >gov.out 2>"$tmp/err"
	cp gov.out "$tmp/out"
	has "malloc/free 7 ok" gov.out && has "getppid Permission denied" gov.out &&
		has "rmdir -1 Operation not permitted" gov.out
	ok $? "$v under the agent: getppid denied (EACCES) through its slot, the rmdir tail call denied (EPERM), malloc/free run"
done
"$govagent" --stats np >stats 2>>"$tmp/err"
cp stats "$tmp/out"
grep -q '"callee":"malloc","calls":14' stats && grep -q '"callee":"free","calls":14' stats
ok $? "trace: the agent counted malloc and free at the slot call sites (7 each, two programs)"
GOV_RESOURCE=np ./np_pie 7 >gov.out 2>"$tmp/err"
has "getppid ok" gov.out && has "rmdir -1 No such file or directory" gov.out
ok $? "the original -fno-plt program is not governed"
stop_agent

# a -fno-plt call to a function that is not chosen stays as it was
run "$gr" --calls malloc --syscalls none --report rep_one np_pie rw_one
! grep -q '	call	printf	' rep_one && ! grep -q '	call	rmdir	' rep_one &&
	[ "$(cmp -l np_pie rw_one 2>/dev/null | wc -l)" -gt 0 ]
ok $? "only the chosen function's slot calls become sites"
finish
