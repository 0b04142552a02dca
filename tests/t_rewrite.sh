#!/bin/sh
# tests/t_rewrite.sh - govrewrite (rewriter/) on real binaries: a small
# program with inline syscalls (PIE, non-PIE, static, stripped) and Debian's
# coreutils, bzip2, busybox-static applets and libc.so.6 rewritten give the
# same bytes as the originals; under a real govagent a deny rule reaches a
# rewritten site whose number the rewriter read and one whose number only
# rax knows, and a trace rule is counted; govctl reads the rewritten site
# table; and every bad input is refused with a clear message, OUT untouched
# and IN never modified. TAP output for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
gr=${GOVREWRITE:-$top/build/bin/govrewrite}
govagent=${GOVAGENT:-$top/build/bin/govagent}
govctl=${GOVCTL:-$top/build/bin/govctl}
lib=${GOVRT_LIBDIR:-$top/build/lib}
tmp=$(mktemp -d /tmp/rewrite.XXXXXX)
agent=""
cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/tests/tap.sh"
has() { grep -qF -- "$1" "$2"; }

for f in "$gr" "$govagent" "$govctl" "$lib/libgovrt.so.1"; do
	if [ ! -e "$f" ]; then
		echo "Bail out! $f is missing: run make"
		exit 1
	fi
done
cd "$tmp" || exit 1
mkdir run lib
export GOV_RUN_DIR="$tmp/run" LC_ALL=C
unset GOV_RESOURCE GOV_FAIL
export LD_LIBRARY_PATH="$lib"
t0=$(date +%s)

agent_resource=rw
. "$top/tests/agent.sh"

# ---- 1. the test program: PIE, non-PIE, static, stripped
src="$top/tests/rewrite/sys.c"
gcc -O2 -g "$src" -o sys_pie && gcc -O2 -g -no-pie "$src" -o sys_nopie &&
	gcc -O2 -g -static "$src" -o sys_static && gcc -O2 -static-pie "$src" -o sys_spie &&
	cp sys_pie sys_strip && strip sys_strip
ok $? "tests/rewrite/sys.c builds PIE, non-PIE, static, static-pie and stripped"
./sys_pie >want.out
for v in pie nopie static spie strip; do
	run "$gr" --calls malloc,free --resource rw --report "rep_$v" "sys_$v" "rw_$v"
	ok $rc "govrewrite sys_$v"
	./"rw_$v" >got.out 2>"$tmp/err" && cmp -s want.out got.out
	ok $? "sys_$v rewritten: same output as the original, no agent"
done
cp rep_pie "$tmp/out"
grep -q '	syscall	getppid	110	patched	-	my_getppid	.*sys.c:[0-9]*	0x' rep_pie &&
	grep -q '	syscall	syscall	-1	patched	-	my_getuid	' rep_pie &&
	grep -q '	call	malloc	-1	patched	-	main	' rep_pie
ok $? "report: the getppid site with its number, caller and DWARF line; getuid's number unknown; a malloc call site"
[ "$(grep -c '	patched	' rep_strip)" -eq "$(grep -c '	patched	' rep_pie)" ] &&
	grep -q '	syscall	getppid	110	patched	-	?	?:0	' rep_strip
ok $? "stripped: the same sites patched, named ?/?:0 without symbols and DWARF"
# no section headers at all (as sstrip leaves a file): the PF_X segments are swept
cp sys_pie sys_noshdr
python3 - sys_noshdr <<'EOF2'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
struct.pack_into('<Q', b, 40, 0)          # e_shoff
struct.pack_into('<HHH', b, 58, 64, 0, 0)  # e_shentsize, e_shnum, e_shstrndx
open(sys.argv[1], 'wb').write(b)
EOF2
run "$gr" --report rep_noshdr sys_noshdr rw_noshdr
./rw_noshdr >got.out 2>>"$tmp/err" && cmp -s want.out got.out &&
	[ "$(grep -c '	syscall	.*	patched	' rep_noshdr)" -eq 4 ]
ok $? "no section headers: the executable segment is swept, the 4 syscalls patched, same output"
# a kernel older than 5.18 puts AT_PHDR at base + e_phoff: the moved table
# must be mapped exactly there
python3 - rw_static rw_pie <<'EOF2'
import struct, sys
for path in sys.argv[1:]:
    b = open(path, 'rb').read()
    phoff, = struct.unpack_from('<Q', b, 32); n, = struct.unpack_from('<H', b, 56)
    loads = [struct.unpack_from('<IIQQQQQQ', b, phoff + 56 * i) for i in range(n)]
    loads = [p for p in loads if p[0] == 1]
    base = loads[0][3] - loads[0][2]
    hold = [p for p in loads if p[2] <= phoff < p[2] + p[5]]
    assert hold and hold[0][3] + phoff - hold[0][2] == base + phoff, path
EOF2
ok $? "the moved program headers are mapped at base + e_phoff (what kernels before 5.18 assume)"
readelf -d rw_pie | grep -q 'NEEDED.*libgovrt.so.1' && ! readelf -d rw_static 2>/dev/null | grep -q NEEDED
ok $? "a dynamic output needs libgovrt.so.1; a static one needs nothing"

g++ -O2 "$top/tests/rewrite/throw.cc" -o throw && ./throw >throw.want
run "$gr" --calls _Z9may_throwi --report throw.rep throw throw.rw
./throw.rw >throw.got 2>"$tmp/err" && cmp -s throw.want throw.got &&
	[ "$(grep -c '	call	_Z9may_throwi	.*	patched	' throw.rep)" -ge 1 ]
ok $? "C++: exceptions thrown through a redirected call site are still caught"
# Debian's start files carry no CET marking, so the linker drops it: mark
# a copy by hand (the x86 ISA property becomes FEATURE_1_AND = IBT|SHSTK)
cp sys_pie sys_cet
python3 - sys_cet <<'EOF2'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
phoff, = struct.unpack_from('<Q', b, 32); n, = struct.unpack_from('<H', b, 56)
for i in range(n):
    if struct.unpack_from('<I', b, phoff + 56 * i)[0] == 0x6474e553:  # PT_GNU_PROPERTY
        off, = struct.unpack_from('<Q', b, phoff + 56 * i + 8)
        struct.pack_into('<III', b, off + 16, 0xc0000002, 4, 3)
open(sys.argv[1], 'wb').write(b)
EOF2
readelf -n sys_cet | grep -q 'SHSTK' && "$gr" -q --calls malloc sys_cet cet.rw &&
	! readelf -n cet.rw | grep -q 'SHSTK' && readelf -n cet.rw | grep -q 'IBT' && ./cet.rw >got.out &&
	cmp -s want.out got.out
ok $? "CET: an output with call sites no longer claims shadow-stack support (IBT kept)"

# ---- 2. under a real agent
start_agent "$top/tests/rewrite/deny.yaml"
GOV_RESOURCE=rw ./rw_pie >gov.out 2>"$tmp/err"
cp gov.out "$tmp/out"
has "getppid Permission denied" gov.out && has "getuid Operation not permitted" gov.out &&
	has "getpid ok" gov.out && has "write ok" gov.out
ok $? "deny: getppid (number read statically) fails with EACCES, getuid (number in rax) with EPERM; the rest runs"
GOV_RESOURCE=rw ./rw_nopie >gov.out 2>"$tmp/err"
has "getppid Permission denied" gov.out
ok $? "deny: the non-PIE rewrite too (link addresses, no bias)"
./rw_pie >gov.out 2>"$tmp/err"
has "getppid Permission denied" gov.out
ok $? "--resource rw at rewrite time: without GOV_RESOURCE the module names its resource"
GOV_RESOURCE=rw ./rw_static >gov.out 2>"$tmp/err"
has "getppid Permission denied" gov.out && has "getuid Operation not permitted" gov.out
ok $? "static: the output carries govrt-static, deny applies (in depth: tests/t_rewrite_static.sh)"
GOV_RESOURCE=rw ./sys_pie >gov.out 2>"$tmp/err"
cmp -s want.out gov.out
ok $? "the original program is not governed (nothing was intercepted)"
stop_agent
start_agent "$top/tests/rewrite/trace.yaml"
GOV_RESOURCE=rw ./rw_pie 25 >gov.out 2>"$tmp/err"
"$govagent" --stats rw >stats 2>>"$tmp/err"
stop_agent
cp stats "$tmp/out"
cmp -s want.out gov.out && grep -q '"calls":25' stats
ok $? "trace getpid: same output, the agent counted the 25 calls"

# fail-closed with no agent: every site fails with the errno, also the one
# whose number is only in rax (its module's shared verdict byte is set)
"$gr" -q sys_pie rw_sysonly
GOV_FAIL=closed GOV_RESOURCE=nobody ./rw_sysonly >closed.out 2>"$tmp/err"
cp closed.out "$tmp/out"
has "getppid Operation not permitted" closed.out && has "getuid Operation not permitted" closed.out &&
	! has "write ok" closed.out && has "governed calls fail with an errno" "$tmp/err"
ok $? "GOV_FAIL=closed, no agent: every rewritten syscall site fails with EPERM (number read or not)"

# a shared object of our own, rewritten; the program using it is not
mkdir shl
gcc -O2 -shared -fPIC "$top/tests/rewrite/shlib.c" -o shl/libshl.so &&
	gcc -O2 -DMAIN "$top/tests/rewrite/shlib.c" -Lshl -lshl -o shlmain &&
	"$gr" -q shl/libshl.so libshl.so
ok $? "a shared object with an inline syscall builds and rewrites"
LD_LIBRARY_PATH="$tmp:$lib" ./shlmain >shl.out 2>"$tmp/err" && has "shl_getppid ok" shl.out
ok $? "the unmodified program runs with the rewritten shared object, no agent"
start_agent "$top/tests/rewrite/deny.yaml"
GOV_RESOURCE=rw LD_LIBRARY_PATH="$tmp:$lib" ./shlmain >shl.out 2>"$tmp/err"
stop_agent
cp shl.out "$tmp/out"
has "shl_getppid Permission denied" shl.out
ok $? "deny getppid reaches the rewritten shared object's site (its DT_NEEDED libgovrt starts govrt)"
gcc -O2 -DDLOPEN "$top/tests/rewrite/shlib.c" -o shldl -ldl
start_agent "$top/tests/rewrite/deny.yaml"
GOV_RESOURCE=rw LD_LIBRARY_PATH="$tmp:$lib" ./shldl >shl.out 2>"$tmp/err"
stop_agent
cp shl.out "$tmp/out"
has "shl_getppid Permission denied" shl.out
ok $? "dlopen of the rewritten shared object: libgovrt comes with it and registers it, deny applies"
gcc -O2 -DDLOPEN "$top/tests/rewrite/shlib.c" -o shldl_gov -ldl -Wl,--no-as-needed -L"$lib" -lgovrt
readelf -d libshl.so | grep -q '(INIT) *0x' && readelf --dyn-syms libshl.so | grep -q 'WEAK .*UND govrt_rewritten_scan'
ok $? "the rewritten shared object's DT_INIT is a stub, and it imports govrt_rewritten_scan (weak)"
start_agent "$top/tests/rewrite/deny.yaml"
GOV_RESOURCE=rw LD_LIBRARY_PATH="$tmp:$lib" ./shldl_gov >shl.out 2>"$tmp/err"
stop_agent
cp shl.out "$tmp/out"
has "shl_getppid Permission denied" shl.out
ok $? "dlopen into a process where govrt already runs: the DT_INIT stub registers the module, deny applies"

# ---- 3. govctl reads the rewritten table
export GOV_STORE="sqlite:$tmp/store.db"
"$govctl" init >/dev/null 2>&1
run "$govctl" register sysrw --type application --from-binary rw_pie
ok $rc "govctl register --from-binary on a rewritten binary"
nsites=$(grep -c '	patched	' rep_pie)
has "with $nsites sites" "$tmp/out"
ok $? "govctl reads the $nsites sites of the PT_GOV_REWRITE table"
"$govctl" register libc-mem --type service --exports malloc,free >/dev/null 2>&1
run "$govctl" register sysrw2 --type application --from-binary rw_pie
has "calls malloc -> libc-mem" "$tmp/out"
ok $? "the rewritten call sites reference the resource exporting malloc"

# ---- 4. coreutils, bzip2, busybox, libc
seq 1 20000 | sed 's/$/ line of text/' >data
shuf -n 3000 --random-source=data data >unsorted 2>/dev/null || cp data unsorted
for p in ls cat sort sha256sum cp wc head tr md5sum uniq cut; do
	run "$gr" --calls malloc,free,open,read,write,close "/usr/bin/$p" "$p"
	ok $rc "govrewrite --calls ... /usr/bin/$p"
done
check() { # WHAT CMD-ORIG CMD-NEW
	sh -c "$2" >o1 2>&1
	sh -c "$3" >o2 2>&1
	cmp -s o1 o2
	ok $? "$1: byte-identical output"
}
check "ls -la" "/usr/bin/ls -la --time-style=+ /usr/share/doc/bzip2" "./ls -la --time-style=+ /usr/share/doc/bzip2"
check "cat" "/usr/bin/cat data" "./cat data"
check "sort" "/usr/bin/sort unsorted" "./sort unsorted"
check "sha256sum" "/usr/bin/sha256sum data unsorted" "./sha256sum data unsorted"
check "cp" "/usr/bin/cp data c1 && /usr/bin/cat c1" "./cp data c2 && /usr/bin/cat c2"
check "wc" "/usr/bin/wc data" "./wc data"
check "head" "/usr/bin/head -n 50 unsorted" "./head -n 50 unsorted"
check "tr" "/usr/bin/tr a-z A-Z <data" "./tr a-z A-Z <data"
check "md5sum" "/usr/bin/md5sum data" "./md5sum data"
check "sort | uniq -c | cut" "/usr/bin/cut -c1-3 data | /usr/bin/sort | /usr/bin/uniq -c" \
	"./cut -c1-3 data | ./sort | ./uniq -c"
# call sites through the agent: calls and tail calls (jmp free@plt) of sort
start_agent "$top/tests/rewrite/calls.yaml"
GOV_RESOURCE=rw ./sort --parallel=2 unsorted >o2 2>"$tmp/err"
"$govagent" --stats rw >stats 2>>"$tmp/err"
stop_agent
/usr/bin/sort unsorted >o1
cp stats "$tmp/out"
cmp -s o1 o2 && grep -q '"callee":"malloc","calls":[1-9]' stats && grep -q '"callee":"free","calls":[1-9]' stats
ok $? "trace malloc and free at sort's call sites: same output, the agent counted both"
run "$gr" --calls malloc,free,open,read,write,close /bin/bzip2 bzip2
ok $rc "govrewrite /bin/bzip2"
check "bzip2 -c | bzip2 -dc" "/bin/bzip2 -c data | /bin/bzip2 -dc" "./bzip2 -c data | ./bzip2 -dc"
check "bzip2 -9c" "/bin/bzip2 -9c unsorted" "./bzip2 -9c unsorted"
"$gr" -q --calls remove /bin/bzip2 bzip2.rm && cp unsorted victim
start_agent "$top/tests/rewrite/remove.yaml"
GOV_RESOURCE=rw ./bzip2.rm victim 2>"$tmp/err"
stop_agent
[ -e victim ] && [ -e victim.bz2 ] && /bin/bzip2 -dc victim.bz2 | cmp -s - unsorted
ok $? "deny remove at bzip2's call sites: the input stays, the .bz2 is whole"
rm -f victim.bz2
./bzip2.rm victim 2>"$tmp/err" && [ ! -e victim ] && [ -e victim.bz2 ]
ok $? "no agent: the same bzip2 removes its input"

run "$gr" --report bb.rep /bin/busybox busybox
ok $rc "govrewrite /bin/busybox (static)"
grep 'syscall instructions' "$tmp/err" | sed 's/^/# /'
[ "$(grep -c '	patched	' bb.rep)" -gt 200 ]
ok $? "busybox: more than 200 syscall sites patched"
for a in "echo hello" "ls -la /usr/share/doc/bzip2" "sort unsorted" "sha256sum data" "wc data" \
	"md5sum unsorted" "seq 1 3000" "od -x data" "tr a-z A-Z" "head -n 7 data"; do
	check "busybox $a" "/bin/busybox $a <data | /bin/busybox tail -n 100" "./busybox $a <data | ./busybox tail -n 100"
done
check "busybox gzip | gunzip" "/bin/busybox gzip -c data | /bin/busybox gunzip -c" \
	"./busybox gzip -c data | ./busybox gunzip -c"
check "busybox sh -c" "/bin/busybox sh -c 'for i in 1 2 3; do echo \$i; done; cat data | wc -l'" \
	"./busybox sh -c 'for i in 1 2 3; do echo \$i; done; cat data | wc -l'"

libc=/lib/x86_64-linux-gnu/libc.so.6
run "$gr" --report libc.rep "$libc" lib/libc.so.6
ok $rc "govrewrite libc.so.6"
grep -q '	rt_sigreturn	15	left	rt_sigreturn stays byte for byte' libc.rep
ok $? "libc: __restore_rt's rt_sigreturn is left as it is"
check "rewritten libc: signals" "/bin/busybox sh -c 'trap \"echo got USR1\" USR1; kill -USR1 \$\$; echo after'" \
	"LD_LIBRARY_PATH=$tmp/lib:$lib /usr/bin/env sh -c 'trap \"echo got USR1\" USR1; kill -USR1 \$\$; echo after'"
has "its init array dlopens libgovrt.so.1" "$tmp/err" && ! readelf -d lib/libc.so.6 | grep -q libgovrt
ok $? "libc.so.6 gets no DT_NEEDED libgovrt.so.1 (a cycle), and starts govrt itself (t_rw_libcinit.sh)"
grep 'syscall instructions' "$tmp/err" | sed 's/^/# /'
L="$tmp/lib:$lib"
check "rewritten libc: ls" "/usr/bin/ls -la --time-style=+ /usr/share/doc" \
	"LD_LIBRARY_PATH=$L /usr/bin/ls -la --time-style=+ /usr/share/doc"
check "rewritten libc: sort" "/usr/bin/sort unsorted" "LD_LIBRARY_PATH=$L /usr/bin/sort unsorted"
check "rewritten libc: sha256sum" "/usr/bin/sha256sum data" "LD_LIBRARY_PATH=$L /usr/bin/sha256sum data"
check "rewritten libc: bzip2" "/bin/bzip2 -c data | /bin/bzip2 -dc | /usr/bin/md5sum" \
	"LD_LIBRARY_PATH=$L /bin/bzip2 -c data | LD_LIBRARY_PATH=$L /bin/bzip2 -dc | LD_LIBRARY_PATH=$L /usr/bin/md5sum"
check "rewritten libc: a threaded sort" "/usr/bin/sort --parallel=4 -S 1M unsorted" \
	"LD_LIBRARY_PATH=$L /usr/bin/sort --parallel=4 -S 1M unsorted"
gcc -O2 "$top/tests/rewrite/cancel.c" -o cancel -lpthread
LD_LIBRARY_PATH=$L ./cancel >cancel.out 2>"$tmp/err" && has "cleanup ran" cancel.out &&
	has "joined, canceled=1" cancel.out
ok $? "rewritten libc: pthread_cancel of a thread blocked in read runs its cleanup handler and ends it"
LD_LIBRARY_PATH=$L ldd /usr/bin/true >ldd.out 2>&1
grep -q "libc.so.6 => $tmp/lib/libc.so.6" ldd.out
ok $? "the unmodified program really loads the rewritten libc"
# every syscall traced: each one of libc's sites takes the slow path, asks
# the agent and then runs: threads, temporary files, fork and exec
{
	echo "verdicts:"
	sed -n 's/^GOV_SYSCALL_ENTRY([0-9]*, *\([a-z_0-9]*\)).*/  - syscall: \1\n    action: trace/p' \
		"$top/include/gov/syscalls.def"
} >traceall.yaml
seq 1 200000 | sed 's/1/x/g' >uns
/usr/bin/sort uns >sort.want
start_agent traceall.yaml
GOV_RESOURCE=rw LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH=$L /usr/bin/sort --parallel=4 -S 200K uns >sort.got 2>"$tmp/err"
rc1=$?
GOV_RESOURCE=rw LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH=$L /bin/bash -c \
	'for i in 1 2 3; do /bin/echo $i; done | /usr/bin/wc -l; /usr/bin/ls / >/dev/null' >bash.got 2>>"$tmp/err"
rc2=$?
"$govagent" --stats rw >stats 2>>"$tmp/err"
stop_agent
calls=$(grep -o '"calls":[0-9]*' stats | head -1 | cut -d: -f2)
echo "# agent counted ${calls:-0} syscalls"
[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && cmp -s sort.want sort.got && [ "$(cat bash.got)" = 3 ] &&
	[ "${calls:-0}" -gt 1000 ]
ok $? "trace every syscall: a threaded sort with temporary files and a bash pipeline through the rewritten libc give the same output; the agent saw them"
mkdir keep
start_agent "$top/tests/rewrite/rmdir.yaml"
GOV_RESOURCE=rw LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH=$L /usr/bin/rmdir keep 2>rmdir.err
rc=$?
stop_agent
cp rmdir.err "$tmp/out"
[ $rc -ne 0 ] && [ -d keep ] && has "Permission denied" rmdir.err
ok $? "deny rmdir: an unmodified rmdir through the rewritten libc (govrt preloaded) fails with EACCES, the directory stays"
LD_LIBRARY_PATH=$L /usr/bin/rmdir keep && [ ! -d keep ]
ok $? "without an agent the same rmdir works"

# ---- 5. bad input: a clear message, OUT untouched, IN never modified
cp sys_pie in.orig
bad() { # WHAT EXPECTED-STATUS MESSAGE IN [OUT]
	what=$1 want=$2 msg=$3 in=$4 out=${5:-out.bad}
	[ -e "$in" ] && cp "$in" in.before
	echo "previous" >"$out.keep"
	[ "$out" = out.bad ] && cp "$out.keep" "$out"
	run "$gr" "$in" "$out"
	[ "$rc" -eq "$want" ] && has "$msg" "$tmp/err"
	ok $? "$what: exit $want, \"$msg\""
	st=0
	if [ "$out" = out.bad ]; then cmp -s "$out.keep" "$out" || st=1; fi
	[ -e "$in" ] && { cmp -s in.before "$in" || st=1; }
	ls ./*.govrewrite-* >/dev/null 2>&1 && st=1
	ok $st "$what: OUT untouched, IN unchanged, no temporary file left"
}
printf 'hello, not an ELF\n' >text
bad "not an ELF" 2 "not an ELF file" text
head -c 40 sys_pie >trunc1
bad "truncated inside the ELF header" 2 "truncated" trunc1
head -c 4000 sys_pie >trunc2
bad "truncated after the headers" 2 "truncated" trunc2
if gcc -m32 -c "$top/tests/rewrite/sys.c" -o sys32.o 2>/dev/null; then :; else
	cp sys_pie sys32.o; printf '\001' | dd of=sys32.o bs=1 seek=4 conv=notrunc 2>/dev/null
fi
bad "a 32-bit ELF" 2 "32-bit ELF" sys32.o
cp sys_pie arm; printf '\267\000' | dd of=arm bs=1 seek=18 conv=notrunc 2>/dev/null
bad "aarch64 (e_machine 183)" 2 "machine aarch64" arm
gcc -c "$src" -o sys.o
bad "a relocatable object" 2 "relocatable object" sys.o
bad "an already rewritten file" 2 "already rewritten" rw_pie
bad "a missing file" 2 "No such file" nonexistent
# no room: a segment whose memory reaches 4 GiB past the code
cp sys_nopie huge
python3 - huge <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
phoff, = struct.unpack_from('<Q', b, 32); n, = struct.unpack_from('<H', b, 56)
last = max((i for i in range(n) if struct.unpack_from('<I', b, phoff + 56 * i)[0] == 1))
o = phoff + 56 * last + 40
struct.pack_into('<Q', b, o, struct.unpack_from('<Q', b, o)[0] + (4 << 30))
open(sys.argv[1], 'wb').write(b)
EOF
bad "no room within 2 GiB of the code" 2 "no room for a segment" huge
cp sys_pie same
bad "IN == OUT" 2 "are the same file" same same
ln -s same link
bad "IN == OUT through a symlink" 2 "are the same file" same link
ln same hard
bad "IN == OUT through a hard link" 2 "are the same file" same hard
mkdir ro && chmod 555 ro
if [ "$(id -u)" -ne 0 ]; then
	bad "OUT in a directory that cannot be written" 3 "cannot create a temporary file" sys_pie ro/out
fi
# undecodable bytes inside a function: named, the syscalls after them left
cat >undec.c <<'EOF'
/* bytes between functions that happen to read as a syscall: not code */
__asm__(".text\n.byte 0x0f, 0x05, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff\n");
int main(int argc, char **argv)
{
	long r = 0;
	if (argc > 5)
		__asm__ volatile(".byte 0x06");  /* push %es: invalid in 64-bit code */
	__asm__ volatile("syscall" : "=a"(r) : "0"(39L) : "rcx", "r11", "memory");
	return r > 0 ? 0 : 1;
}
EOF
gcc -O0 undec.c -o undec
run "$gr" --report undec.rep undec undec.rw
has "do not decode as x86-64" "$tmp/err" && has "in main" "$tmp/err" &&
	grep -q 'follows undecodable bytes' undec.rep && ./undec.rw
ok $? "undecodable bytes: a warning naming where (main), the syscall after them left and reported, OUT works"
grep -q 'left	outside every function of the symbol table' undec.rep
ok $? "syscall bytes outside every function of .symtab (data, padding): left"
echo previous >rep.keep
cp rep.keep rep.out
run "$gr" --report /nonexistent/dir/rep sys_pie rep.out
[ $rc -eq 3 ] && has "--report /nonexistent/dir/rep" "$tmp/err" && cmp -s rep.keep rep.out
ok $? "a report that cannot be written: exit 3 before OUT is touched"
run "$gr"
[ $rc -eq 1 ] && has "expected IN and OUT" "$tmp/err"
ok $? "no arguments: usage error (1)"
run "$gr" --frobnicate sys_pie x
[ $rc -eq 1 ] && has "unknown option" "$tmp/err"
ok $? "unknown option: usage error (1)"
run "$gr" --syscalls getppid,nosuchcall sys_pie x
[ $rc -eq 1 ] && has "unknown syscall 'nosuchcall'" "$tmp/err" && [ ! -e x ]
ok $? "--syscalls with an unknown name: usage error, nothing written"
run "$gr" --help
[ $rc -eq 0 ] && has "examples:" "$tmp/out"
ok $? "--help shows examples"
run "$gr" --dry-run --report - --syscalls getppid sys_pie
[ $rc -eq 0 ] && grep -q '	getppid	110	patched' "$tmp/out" && grep -q '	getpid	39	left	not selected' "$tmp/out"
ok $? "--dry-run --syscalls getppid: getppid patched, getpid left (not selected), nothing written"
run "$gr" --syscalls none --calls nosuchfunc sys_pie none.rw
[ $rc -eq 0 ] && has "--calls nosuchfunc: no such function" "$tmp/err" && ./none.rw >got.out && cmp -s want.out got.out
ok $? "--syscalls none and an unknown --calls name: a warning, the program unchanged in behaviour"
cmp -s in.orig sys_pie
ok $? "sys_pie was never modified by any of the runs"

echo "# total: $(($(date +%s) - t0)) s"
finish
