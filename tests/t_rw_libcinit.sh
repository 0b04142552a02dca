#!/bin/sh
# tests/t_rw_libcinit.sh - a rewritten libc.so.6 that starts govrt itself
# (docs/rewrite.md, "A self-starting libc"): unmodified programs run with
# it through LD_LIBRARY_PATH, no LD_PRELOAD. With no GOV_RESOURCE nothing
# is loaded and the output is the original's byte for byte; under a real
# agent a deny rule takes effect and a trace-every-syscall agent counts
# what it counts with LD_PRELOAD; with LD_PRELOAD too govrt is loaded and
# counts once; secure-execution loads nothing; a missing libgovrt gives
# one line on stderr; --no-self-start and libraries that cannot self-start
# are left as before, with a warning. Not here: the rewriting of libc's
# syscalls itself (t_rewrite.sh). TAP output for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
gr=${GOVREWRITE:-$top/build/bin/govrewrite}
govagent=${GOVAGENT:-$top/build/bin/govagent}
lib=${GOVRT_LIBDIR:-$top/build/lib}
tmp=$(mktemp -d /tmp/libcinit.XXXXXX)
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
mkdir run lib
export GOV_RUN_DIR="$tmp/run" LC_ALL=C
unset GOV_RESOURCE GOV_FAIL LD_PRELOAD
L="$tmp/lib:$lib"

agent_resource=rw
. "$top/tests/agent.sh"
# The agent's count of calls so far, less the syscalls by which a thread
# starts and polls: govrt's own thread sometimes makes its first ones
# before govrt knows it as its own (with and without the self-start), so
# they are counted in some runs and not in others.
calls() {
	"$govagent" --stats rw 2>>"$tmp/err" | grep -o '"callee":"[a-z_0-9]*","calls":[0-9]*' |
		awk -F'"' '$4 !~ /^(poll|rseq|rt_sigprocmask|set_robust_list)$/ {
			sub(/^:/, "", $7); s += $7 } END { print s + 0 }'
}
initsz() { readelf -d "$1" | awk '/INIT_ARRAYSZ/ { print $3 }'; }

# ---- 1. the rewrite
libc=/lib/x86_64-linux-gnu/libc.so.6
run "$gr" "$libc" lib/libc.so.6
ok $rc "govrewrite libc.so.6"
has "its init array dlopens libgovrt.so.1 when GOV_RESOURCE is set" "$tmp/err" &&
	[ "$(initsz lib/libc.so.6)" -eq $(($(initsz "$libc") + 8)) ] &&
	! readelf -d lib/libc.so.6 | grep -q 'NEEDED.*libgovrt' &&
	readelf -r lib/libc.so.6 | grep -q "^0*$(readelf -d lib/libc.so.6 |
		awk '/\(INIT_ARRAY\)/ { sub(/^0x0*/, "", $3); print $3 }') .*R_X86_64_RELATIV"
ok $? "the rewritten libc has one more init array entry (relocated), no DT_NEEDED libgovrt, and says so"
cp "$tmp/err" rw.err

# ---- 2. no agent configured: nothing loaded, the same bytes
LD_LIBRARY_PATH=$L /bin/cat /proc/self/maps >maps.none 2>"$tmp/err"
has "$tmp/lib/libc.so.6" maps.none && ! has libgovrt maps.none && [ ! -s "$tmp/err" ]
ok $? "no GOV_RESOURCE: the rewritten libc is loaded and libgovrt is not"
GOV_RESOURCE= LD_LIBRARY_PATH=$L /bin/cat /proc/self/maps >maps.empty 2>"$tmp/err"
! has libgovrt maps.empty && [ ! -s "$tmp/err" ]
ok $? "GOV_RESOURCE empty: libgovrt is not loaded"
seq 1 20000 | sed 's/7/x/g' >data
same() { # WHAT CMD: the same stdout, stderr and status with the rewritten libc
	sh -c "$2" >want.out 2>want.err
	w=$?
	LD_LIBRARY_PATH=$L sh -c "$2" >got.out 2>got.err
	g=$?
	cmp -s want.out got.out && cmp -s want.err got.err && [ $w -eq $g ]
	ok $? "no agent configured, $1: byte-identical output"
}
same "ls" "/usr/bin/ls -la --time-style=+ /usr/share/doc"
same "sha256sum" "/usr/bin/sha256sum data"
same "sort" "/usr/bin/sort -r data"
same "a failing cat" "/bin/cat /nonexistent data"

# ---- 3. a real agent, no LD_PRELOAD
mkdir keep
start_agent "$top/tests/rewrite/rmdir.yaml"
GOV_RESOURCE=rw LD_LIBRARY_PATH=$L /usr/bin/rmdir keep 2>rmdir.err
rc=$?
stop_agent
cp rmdir.err "$tmp/err"
[ $rc -ne 0 ] && [ -d keep ] && has "Permission denied" rmdir.err
ok $? "deny rmdir: an unmodified rmdir with the rewritten libc and no LD_PRELOAD fails with EACCES, the directory stays"
LD_LIBRARY_PATH=$L /usr/bin/rmdir keep && [ ! -d keep ]
ok $? "without GOV_RESOURCE the same rmdir works"

{
	echo "verdicts:"
	sed -n 's/^GOV_SYSCALL_ENTRY([0-9]*, *\([a-z_0-9]*\)).*/  - syscall: \1\n    action: trace/p' \
		"$top/include/gov/syscalls.def"
} >traceall.yaml
/usr/bin/sha256sum data >sum.want
# the baseline: libc rewritten as before the self-start, govrt preloaded
mkdir noself
"$gr" -q --no-self-start "$libc" noself/libc.so.6 2>/dev/null
start_agent traceall.yaml
c0=$(calls)
GOV_RESOURCE=rw LD_LIBRARY_PATH=$L /usr/bin/sha256sum data >sum.self 2>"$tmp/err"
c1=$(calls)
GOV_RESOURCE=rw LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH=$L /usr/bin/sha256sum data >sum.both 2>>"$tmp/err"
c2=$(calls)
GOV_RESOURCE=rw LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH=$tmp/noself:$lib /usr/bin/sha256sum data \
	>sum.pre 2>>"$tmp/err"
c3=$(calls)
GOV_RESOURCE=rw LD_PRELOAD=libgovrt.so.1 LD_LIBRARY_PATH=$L /bin/cat /proc/self/maps >maps.both \
	2>>"$tmp/err"
GOV_RESOURCE=rw LD_LIBRARY_PATH=$L /bin/sh -c '/bin/cat /proc/self/maps' >maps.exec 2>>"$tmp/err"
stop_agent
self=$((c1 - c0)) both=$((c2 - c1)) pre=$((c3 - c2))
echo "# sha256sum: the agent counted $self syscalls (self-start), $both (self-start + LD_PRELOAD)," \
	"$pre (libc rewritten --no-self-start, LD_PRELOAD)"
cmp -s sum.want sum.self && [ "$self" -gt 10 ]
ok $? "trace every syscall, no LD_PRELOAD: the same output, the agent saw the syscalls"
cmp -s sum.want sum.both && cmp -s sum.want sum.pre && [ "$both" -eq "$self" ] &&
	[ "$pre" -eq "$self" ]
ok $? "the agent counts the same with the self-start, with it plus LD_PRELOAD (governed once), and with LD_PRELOAD alone"
[ "$(grep -c 'r-xp.*libgovrt.so.1' maps.both)" -eq 1 ]
ok $? "LD_PRELOAD plus the rewritten libc: libgovrt is mapped once"
has libgovrt maps.exec && [ ! -s "$tmp/err" ]
ok $? "a program that sh execs starts govrt too (the environment carries GOV_RESOURCE)"

# ---- 4. libgovrt missing: one line on stderr, the program runs
GOV_RESOURCE=rw LD_LIBRARY_PATH=$tmp/lib /usr/bin/sha256sum data >sum.miss 2>miss.err
rc=$?
cp miss.err "$tmp/err"
[ $rc -eq 0 ] && cmp -s sum.want sum.miss && [ "$(wc -l <miss.err)" -eq 1 ] &&
	has "govrt: the rewritten libc.so.6 could not load libgovrt.so.1 (libgovrt.so.1: cannot open" \
		miss.err && has "this process is not governed" miss.err
ok $? "libgovrt.so.1 not found: one line on stderr says so, the program runs ungoverned"

# ---- 5. secure-execution (setuid): nothing loaded. As root, a program
# setuid to nobody runs with AT_SECURE; LD_LIBRARY_PATH is then ignored,
# so it finds the rewritten libc (and a libgovrt next to it) by DT_RPATH
# (which, unlike RUNPATH, also serves the dlopen that libc makes).
if [ "$(id -u)" -ne 0 ] || ! id nobody >/dev/null 2>&1; then
	echo "ok $((n + 1)) # skip secure-execution: needs root and a user nobody"
	n=$((n + 1))
else
	chmod 755 "$tmp" lib
	cp "$lib/libgovrt.so.1" lib/
	printf '#include <stdio.h>\nint main(void){FILE*f=fopen("/proc/self/maps","r");int c;\n%s\n' \
		'while((c=getc(f))!=EOF)putchar(c);return 0;}' >maps.c
	gcc -O2 maps.c -o suid -Wl,-rpath,"$tmp/lib" -Wl,--disable-new-dtags && cp suid plain &&
		chown nobody suid && chmod 4755 suid
	GOV_RESOURCE=rw ./plain >maps.plain 2>"$tmp/err"
	GOV_RESOURCE=rw ./suid >maps.suid 2>>"$tmp/err"
	has "$tmp/lib/libc.so.6" maps.suid && ! has libgovrt maps.suid && has libgovrt maps.plain
	ok $? "secure-execution (setuid): the rewritten libc loads nothing; the same program not setuid does"
fi

# ---- 6. options and libraries that cannot self-start: as before, a warning
run "$gr" --no-self-start "$libc" lib/libc.noself
[ $rc -eq 0 ] && has "--no-self-start: load govrt with LD_PRELOAD=libgovrt.so.1" "$tmp/err" &&
	[ "$(initsz lib/libc.noself)" -eq "$(initsz "$libc")" ] && ! has "init array dlopens" "$tmp/err"
ok $? "--no-self-start: libc's init array is left as it is, and the warning says to preload"
run "$gr" --no-needed "$libc" lib/libc.noneeded
[ $rc -eq 0 ] && [ "$(initsz lib/libc.noneeded)" -eq "$(initsz "$libc")" ]
ok $? "--no-needed: no self-start either"
printf 'int fake_syscall(void) { return 0; }\n' >fake.c
gcc -shared -fPIC -O2 fake.c -o fake.so -Wl,-soname,libc.so.6
run "$gr" fake.so fake.rw
[ $rc -eq 0 ] && has "fake.so: libc.so.6 does not define getauxval" "$tmp/err" &&
	has "no self-start; load govrt with LD_PRELOAD=libgovrt.so.1" "$tmp/err" &&
	[ "$(initsz fake.rw)" -eq "$(initsz fake.so)" ]
ok $? "a libc.so.6 without dlopen and getauxval (before glibc 2.34): no self-start, a warning naming what is missing"
gcc -shared -fPIC -O2 -nostartfiles fake.c -o fake2.so -Wl,-soname,libc.so.6
run "$gr" fake2.so fake2.rw
[ $rc -eq 0 ] && has "fake2.so: libc.so.6: no DT_INIT_ARRAY inside the file: no self-start" "$tmp/err" &&
	! readelf -d fake2.rw | grep -q INIT_ARRAY
ok $? "a libc.so.6 without DT_INIT_ARRAY: no self-start, a warning says why"
run "$gr" --no-self-start=x "$libc" lib/libc.bad
[ $rc -eq 1 ] && has "unknown option or missing argument: --no-self-start=x" "$tmp/err" &&
	[ ! -e lib/libc.bad ]
ok $? "--no-self-start takes no argument: usage error, nothing written"
finish
