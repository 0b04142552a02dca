#!/bin/sh
# tests/t_gcc_plugin.sh - govintercept.so (gcc-plugin/): programs of
# tests/gcc-plugin/ built plain and with the plugin at -O0, -O2 and -flto
# print the same bytes with no agent; under a govagent, deny, emulate and
# trace apply to call sites and to syscall sites (glibc wrapper, syscall(2),
# inline asm); the site listing and ids; a shared object and an executable
# governed together; C++ with exceptions through a governed call; inline
# asm with r10/r8/r9 register variables; #pragma gov_native; exports-of
# (through govctl and a real store); every option and every bad input,
# targets that match nothing included. TAP output for prove.
# $gp, $link and $opt are lists of flags, split on purpose:
# shellcheck disable=SC2086
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
plugin=${GOVINTERCEPT:-$top/build/lib/govintercept.so}
govagent=${GOVAGENT:-$top/build/bin/govagent}
lib=${GOVRT_LIBDIR:-$top/build/lib}
tmp=$(mktemp -d /tmp/gcc-plugin.XXXXXX)
agent=""
cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/tests/tap.sh"
has() { grep -qF -- "$1" "$2"; }

for f in "$plugin" "$govagent" "$lib/libgovrt.so"; do
	if [ ! -e "$f" ]; then
		echo "Bail out! $f is missing: run make (or set GOVINTERCEPT, GOVAGENT, GOVRT_LIBDIR)"
		exit 1
	fi
done

export LC_ALL=C   # ASCII quotes in GCC's messages
cp -r "$top/tests/gcc-plugin" "$tmp/src"
cd "$tmp" || exit 1
mkdir run
export GOV_RUN_DIR="$tmp/run"
unset GOV_RESOURCE GOV_FAIL

gp="-fplugin=$plugin -fplugin-arg-govintercept-verify"
arg() { echo "-fplugin-arg-govintercept-$1"; }
link="-L$lib -Wl,-rpath,$lib -lgovrt"
targets=twice:scale:sum6:count_nonzero:fill:greet:neg16:low8:mix:note:from_other_unit
cc_run() { run "$@"; }

agent_resource=gp
. "$top/tests/agent.sh"
stats() { "$govagent" --stats gp >"$tmp/stats" 2>"$tmp/err"; }

# ---- 1. behaviour: plain and instrumented print the same; agents govern
i=0
for opt in "-O0" "-O2" "-O2 -flto"; do
	i=$((i + 1))
	cc_run gcc $opt -Isrc src/calls.c src/helper.c -o plain$i
	ok $rc "calls.c builds plain ($opt)"
	cc_run gcc $opt -Isrc $gp "$(arg targets=$targets)" "$(arg syscalls=all)" \
		"$(arg list=list$i)" src/calls.c src/helper.c -o inst$i $link
	ok $rc "calls.c builds with govintercept ($opt)"
	./plain$i >plain$i.out 2>"$tmp/err"
	./inst$i >inst$i.out 2>>"$tmp/err"
	cmp -s plain$i.out inst$i.out
	ok $? "no agent: same output as the plain build ($opt)"

	start_agent src/govern.yaml
	GOV_RESOURCE=gp ./inst$i >gov.out 2>"$tmp/err"
	stop_agent
	cp gov.out "$tmp/err"
	has "twice 7" gov.out && has "pair 14" gov.out
	ok $? "emulate a call: twice returns 7 at every site ($opt)"
	has "other 8" gov.out
	ok $? "the site of helper.c, the other unit calling twice, is governed too ($opt)"
	has "native_twice 10" gov.out
	ok $? "gov_native keeps a function's body native ($opt)"
	has "unlink -1/EACCES, file stays" gov.out
	ok $? "deny a call: unlink returns -1 with errno EACCES ($opt)"
	has "getppid wrapper=4242 syscall=4242 asm=4242" gov.out
	ok $? "emulate a syscall: getppid(), syscall(SYS_getppid), inline asm ($opt)"
	has "getpid wrapper=-1/EACCES syscall=-1/EACCES asm=-13" gov.out
	ok $? "deny a syscall: -1/errno for the wrapper and syscall(2), -errno for raw asm ($opt)"

	start_agent src/trace.yaml
	GOV_RESOURCE=gp ./inst$i >trace.out 2>"$tmp/err"
	stats
	stop_agent
	cmp -s plain$i.out trace.out
	ok $? "trace: every traced call runs natively from the packed words, same output ($opt)"
	has '"calls":13,' "$tmp/stats" && has '"to":"note","calls":2' "$tmp/stats"
	ok $? "trace: the agent counted the 13 traced calls ($opt)"
done

for opt in "-O1" "-O3" "-Os" "-O2 -fPIE -pie" "-O2 -ffunction-sections -fdata-sections -Wl,--gc-sections" \
	"-O2 -flto=2 -flto-partition=max"; do
	gcc $opt -Isrc $gp "$(arg targets=$targets)" "$(arg syscalls=all)" src/calls.c \
		src/helper.c -o more $link 2>"$tmp/err" && ./more >more.out 2>>"$tmp/err" &&
		cmp -s plain2.out more.out
	ok $? "$opt: builds, same output with no agent"
	start_agent src/govern.yaml
	GOV_RESOURCE=gp ./more >gov.out 2>"$tmp/err"
	stop_agent
	has "getppid wrapper=4242 syscall=4242 asm=4242" gov.out && has "pair 14" gov.out &&
		has "other 8" gov.out
	ok $? "$opt: the site table survives, every site is governed"
done

# ---- 2. the listing and the ids
# calls.c: 14 calls to helper.h's functions, 11 to syscall wrappers, 2
# syscall(2), 2 inline asm, 1 in helper.c: 29 + 1
cp list2 "$tmp/err"
nsites=$(wc -l <list2)
[ "$nsites" -eq 30 ]
ok $? "list=: one line per site (30)"
! grep -vqE '^[0-9a-f]{16} (call|syscall) [^ ]+ [^ ]+ [^ ]+:[0-9]+$' list2
ok $? "list=: every line is id kind caller callee file:line"
grep -q ' syscall raw_getppid getppid src/calls.c:' list2 &&
	grep -q ' syscall main getppid src/calls.c:' list2 &&
	grep -q ' call main getppid src/calls.c:' list2 &&
	grep -q ' call from_other_unit twice src/helper.c:' list2
ok $? "list=: call, syscall(2) and asm sites, in both units"
! grep -qE ' (real_ppid|real_pid|native_twice) ' list2
ok $? "list=: no site in gov_native functions"
for k in 1 2 3; do sort list$k >sorted$k; done
cmp -s sorted1 sorted2 && cmp -s sorted2 sorted3
ok $? "the same source gives the same sites and ids at -O0, -O2 and -flto"
pair=$(grep -n 'twice(1) + twice(2)' src/calls.c | cut -d: -f1)
[ "$(grep -c " main twice src/calls.c:$pair\$" list2)" -eq 2 ] &&
	[ "$(grep " main twice src/calls.c:$pair\$" list2 | cut -c1-16 | sort -u | wc -l)" -eq 2 ]
ok $? "two sites on one line get different ids"
gcc -I"$top/include" src/siteid.c -o siteid 2>"$tmp/err"
first=$(grep -n 'printf("twice %ld' src/calls.c | cut -d: -f1)
want=$(./siteid src/calls.c "$first" main twice)
grep -q "^$want call main twice src/calls.c:$first\$" list2
ok $? "a site's id is gov/abi.h's gov_site_id(file, line, caller, callee)"
want2=$(./siteid src/calls.c "$pair" main "twice#2")
grep -q "^$want2 call main twice src/calls.c:$pair\$" list2
ok $? "the second site on a line hashes callee#2"
for k in 1 2; do
	gcc -O2 -g -Isrc $gp "$(arg targets=$targets)" "$(arg syscalls=all)" -c src/calls.c -o repro$k.o
done
cmp -s repro1.o repro2.o
ok $? "two compiles give byte-identical objects"
objdump -t inst2 | grep -q ' gov_sites' && [ "$(objdump -h inst2 | awk '$2 == "gov_sites" { print $3 }')" = \
	"$(printf '%08x' $((nsites * 64)))" ]
ok $? "the executable's gov_sites section holds 30 records of 64 bytes"
: >par.list
for k in 1 2 3 4; do
	gcc -O1 -Isrc $gp "$(arg targets=$targets)" "$(arg syscalls=all)" "$(arg list=par.list)" \
		-c src/calls.c -o par$k.o &
done
wait
[ "$(wc -l <par.list)" -eq $((4 * 29)) ] && ! grep -vqE '^[0-9a-f]{16} (call|syscall) [^ ]+ [^ ]+ [^ ]+:[0-9]+$' par.list
ok $? "four compiles appending to one list at once: every line whole"

# ---- 3. a shared object and an executable, each with its own sites
cc_run gcc -O2 -fPIC -shared $gp "$(arg targets=inner_value)" src/shlib.c -o libgp.so $link
ok $rc "a shared object builds with -fPIC and the plugin"
cc_run gcc -O2 $gp "$(arg targets=lib_entry)" src/shmain.c -o shmain -L. -Wl,-rpath,"$tmp" -lgp $link
ok $rc "an executable using it builds with the plugin"
[ "$(./shmain)" = "$(printf 'lib_entry 20\nlib_entry 30')" ]
ok $? "no agent: native results"
start_agent src/shared.yaml
GOV_RESOURCE=gp ./shmain >sh.out 2>"$tmp/err"
stats
stop_agent
[ "$(cat sh.out)" = "$(printf 'lib_entry 410\nlib_entry 410')" ]
ok $? "the shared object's site is governed (emulated)"
has '"to":"lib_entry","calls":2' "$tmp/stats"
ok $? "the executable's site is governed (traced twice)"

# ---- C++
for opt in -O0 -O2; do
	cc_run g++ $opt -Isrc src/calls.cc src/cxxhelper.cc -o cplain
	g++ $opt -Isrc $gp "$(arg targets=billing::*:twice)" "$(arg syscalls=all)" -c src/calls.cc \
		-o calls.o 2>"$tmp/err" && g++ $opt calls.o src/cxxhelper.cc -o cinst $link 2>>"$tmp/err"
	ok $? "C++: builds with the plugin ($opt)"
	./cplain >cplain.out
	./cinst >cinst.out 2>"$tmp/err"
	cmp -s cplain.out cinst.out
	ok $? "C++: same output with no agent ($opt)"
	start_agent src/cxx.yaml
	GOV_RESOURCE=gp ./cinst >cgov.out 2>"$tmp/err"
	stats
	stop_agent
	has "charge 99" cgov.out && has "caught negative" cgov.out &&
		[ "$(grep -c 'unwind attempt' cgov.out)" -eq 2 ] && has "ledger 12" cgov.out
	ok $? "C++: emulate a namespace function; a traced call that throws unwinds ($opt)"
	has '"to":"billing::may_throw","calls":2' "$tmp/stats" &&
		has '"to":"billing::Ledger::add","calls":2' "$tmp/stats"
	ok $? "C++: traced member and throwing calls counted ($opt)"
done

# ---- 4. options and bad input
echo 'int main(void) { return 0; }' >empty.c
cc_run gcc $gp "$(arg frobnicate=1)" -c empty.c
[ $rc -ne 0 ] && has "govintercept: unknown option 'frobnicate'" "$tmp/err"
ok $? "an unknown option is an error naming it"
cc_run gcc $gp "$(arg targets-file=/nonexistent/targets.txt)" -c empty.c
[ $rc -ne 0 ] && has "cannot read targets-file '/nonexistent/targets.txt': No such file or directory" "$tmp/err"
ok $? "an unreadable targets-file is an error with the path and the errno text"
cc_run gcc $gp "$(arg targets-file=src)" -c empty.c
[ $rc -ne 0 ] && has "cannot read targets-file 'src': Is a directory" "$tmp/err"
ok $? "a targets-file that is a directory: the same"
cc_run gcc $gp "$(arg targets-header=/nonexistent/api.h)" -c empty.c
[ $rc -ne 0 ] && has "cannot read targets-header '/nonexistent/api.h'" "$tmp/err"
ok $? "an unreadable targets-header is an error"
cc_run gcc $gp "$(arg syscalls=getppid:bogus)" -c empty.c
[ $rc -ne 0 ] && has "'bogus' is neither an x86-64 syscall nor a glibc syscall wrapper" "$tmp/err"
ok $? "an unknown syscall name is an error"
cc_run gcc $gp "$(arg resource=.hidden/x)" -c empty.c
[ $rc -ne 0 ] && has "resource='.hidden/x'" "$tmp/err"
ok $? "a bad resource name is an error"
cc_run gcc $gp "$(arg targets)" -c empty.c
[ $rc -ne 0 ] && has "option 'targets' needs a value" "$tmp/err"
ok $? "an option without its value is an error"
cc_run gcc $gp "$(arg verbose=yes)" -c empty.c
[ $rc -ne 0 ] && has "option 'verbose' takes no value" "$tmp/err"
ok $? "a flag with a value is an error"
cc_run gcc $gp "$(arg help)" -c empty.c -o empty.o
[ $rc -eq 0 ] && has "targets=GLOB" "$tmp/err" && has "list=PATH" "$tmp/err" && [ -s empty.o ] &&
	has "exports-of=RESOURCE" "$tmp/err" && has "store=URL" "$tmp/err" && has "govctl=PATH" "$tmp/err" &&
	has "unmatched=warn|ignore" "$tmp/err" && has "#pragma gov_native(NAME" "$tmp/err"
ok $? "help prints the options and compiles on"
cc_run gcc $gp "$(arg targets=no_such_function:twice:nope_*)" -c src/calls.c -Isrc -o nomatch.o
[ $rc -eq 0 ] && has "warning: govintercept: targets= 'no_such_function', 'nope_*' matched no function called in src/calls.c (unmatched=ignore silences this)" "$tmp/err" &&
	[ "$(grep -c 'matched no function' "$tmp/err")" -eq 1 ] && [ -s nomatch.o ]
ok $? "targets= names that match nothing: one warning per unit naming them, not an error"
cc_run gcc $gp "$(arg targets=no_such_function)" -Werror -c src/calls.c -Isrc -o nomatch.o
[ $rc -ne 0 ] && has "error: govintercept: targets= 'no_such_function' matched no function" "$tmp/err"
ok $? "... an error under -Werror, like any warning"
cc_run gcc $gp "$(arg targets=no_such_function)" "$(arg unmatched=ignore)" -Werror -c src/calls.c -Isrc -o nomatch.o
[ $rc -eq 0 ] && [ ! -s "$tmp/err" ]
ok $? "... unmatched=ignore silences it"
cc_run gcc $gp "$(arg unmatched=sometimes)" -c empty.c
[ $rc -ne 0 ] && has "unmatched='sometimes': the value is 'warn' or 'ignore'" "$tmp/err"
ok $? "... a bad unmatched= value is an error"
printf 'no_such_function\ntwice\n' >"$tmp/nomatch.txt"
cc_run gcc $gp "$(arg targets-file=$tmp/nomatch.txt)" -c src/calls.c -Isrc -o nomatch.o
[ $rc -eq 0 ] && [ ! -s "$tmp/err" ]
ok $? "a targets-file= name that matches nothing: silent (a bulk list)"
cc_run gcc $gp "$(arg targets-file=$tmp/nomatch.txt)" "$(arg verbose)" -c src/calls.c -Isrc -o nomatch.o
[ $rc -eq 0 ] && has "note: govintercept: targets-file target 'no_such_function' matches no function called in src/calls.c" "$tmp/err" &&
	! has "target 'twice'" "$tmp/err"
ok $? "... a note with verbose"
cc_run gcc $gp "$(arg targets-header=src/helper.h)" -c empty.c -o nomatch.o
[ $rc -eq 0 ] && has "targets-header 'src/helper.h' declares no function called in empty.c" "$tmp/err"
ok $? "a targets-header= that declares no callee: a warning"
cc_run gcc $gp "$(arg unmatched=ignore)" "$(arg targets=no_such_function)" -c src/calls.c -Isrc -o nomatch.o
nm nomatch.o >"$tmp/out"
! has __govrt_ "$tmp/out" && gcc nomatch.o src/helper.c -Isrc -o nomatch 2>"$tmp/err"
ok $? "a unit without sites does not reference govrt (links without -lgovrt)"
cc_run gcc -O2 -Isrc $gp "$(arg targets=by_value:seven)" "$(arg syscalls=all)" -c src/warn.c -o warn.o
[ $rc -eq 0 ] && has "inline asm syscall at src/warn.c:16 is not instrumented; govrt's run-time fallback covers it" "$tmp/err"
ok $? "an inline asm syscall it cannot rewrite: a warning with file:line"
has "syscall(2) with a number not known at compile time at src/warn.c:22 is not instrumented" "$tmp/err"
ok $? "syscall(2) with a variable number: a warning with file:line"
! has "call to 'by_value'" "$tmp/err" &&
	has "call to 'seven' at src/warn.c:28 is not instrumented: it passes more arguments" "$tmp/err"
ok $? "seven arguments: a warning with file:line; a struct by value is no longer one"
cc_run gcc -O2 -Isrc $gp "$(arg targets=by_value)" "$(arg verbose)" "$(arg list=sv.list)" -c src/warn.c -o warn.o
[ $rc -eq 0 ] && has "structs calls by_value (types l{ll})" "$tmp/err" && grep -q " call structs by_value src/warn.c:28$" sv.list
ok $? "a struct by value is a site: listed, its type string l{ll} (verbose)"
cc_run gcc -O2 -Wno-psabi -Isrc $gp "$(arg targets=by_union:by_bits:by_packed:by_flex:by_huge)" -c src/structs.c -o structs.o
[ $rc -eq 0 ] &&
	has "call to 'by_union' at src/structs.c:22 is not instrumented: a union by value" "$tmp/err" &&
	has "call to 'by_bits' at src/structs.c:22 is not instrumented: a bit-field in a struct" "$tmp/err" &&
	has "call to 'by_packed' at src/structs.c:22 is not instrumented: a struct whose layout is not C's natural one (packed or aligned)" "$tmp/err" &&
	has "call to 'by_flex' at src/structs.c:22 is not instrumented: a flexible or zero-length array in a struct" "$tmp/err" &&
	has "call to 'by_huge' at src/structs.c:22 is not instrumented: its type string (struct layouts) is longer than 47 characters" "$tmp/err"
ok $? "a struct no type string can express keeps its warning, with the reason"
cc_run gcc -O2 -Isrc $gp "$(arg targets-file=src/targets.txt)" "$(arg list=tf.list)" -c src/calls.c -o tf.o
[ $rc -eq 0 ] && [ "$(cut -d' ' -f4 tf.list | sort -u | tr '\n' ' ')" = "sum6 twice " ]
ok $? "targets-file: globs, comments and blank lines"
cc_run gcc -O2 -Isrc $gp "$(arg targets-header=src/api.h)" "$(arg list=th.list)" -c src/api_user.c -o th.o
[ $rc -eq 0 ] && [ "$(cut -d' ' -f4 th.list | sort | tr '\n' ' ')" = "api_close api_open " ]
ok $? "targets-header: every function declared in the header, and only those"
cc_run gcc -O2 -Isrc $gp "$(arg syscalls=getppid)" "$(arg list=sc.list)" -c src/calls.c -o sc.o
[ $rc -eq 0 ] && [ "$(cut -d' ' -f2-4 sc.list | sort | tr '\n' ' ')" = \
	"call main getppid syscall main getppid syscall raw_getppid getppid " ]
ok $? "syscalls=NAME: the wrapper, syscall(2) and asm sites of that syscall only"
cc_run gcc -O2 -Isrc $gp "$(arg targets=twice)" "$(arg syscalls=none)" "$(arg list=none.list)" -c src/calls.c -o none.o
[ $rc -eq 0 ] && ! grep -qv ' twice ' none.list
ok $? "syscalls=none: call sites only"
cc_run gcc -O2 -Isrc $gp "$(arg targets=twice)" "$(arg list=/nonexistent/dir/list)" -c src/calls.c -o x.o
[ $rc -ne 0 ] && has "cannot open list '/nonexistent/dir/list'" "$tmp/err"
ok $? "an unwritable list is an error"
cc_run gcc -O2 -Isrc $gp "$(arg targets=twice)" "$(arg resource=gp)" src/calls.c src/helper.c -o builtin $link
start_agent src/govern.yaml
./builtin >builtin.out 2>"$tmp/err"
stop_agent
[ $rc -eq 0 ] && has "twice 7" builtin.out
ok $? "resource=: the module names its resource (no GOV_RESOURCE needed)"

cc_run gcc $gp "$(arg check-libc)" -c src/libc_protos.c -o protos.o
[ $rc -eq 0 ] && ! has "gov/libc.def says" "$tmp/err"
ok $? "check-libc: glibc's prototypes map to gov/libc.def's type strings (same rules)"
printf 'long read(int, void *, unsigned long);\n' >badproto.c
cc_run gcc $gp "$(arg check-libc)" -c badproto.c -o badproto.o
has "'read': its prototype gives types 'lipL', gov/libc.def says 'lioz'" "$tmp/err"
ok $? "check-libc: a prototype that disagrees is reported"


printf '#include <stddef.h>\nvoid *alloca(size_t n); /* GCC builtin, no macro */\nint main(int c, char **v) { char *p = alloca(c + 8); p[0] = v[0][0]; return p[0] == 0; }\n' >alloca.c
cc_run gcc -O2 $gp "$(arg targets=alloca)" -c alloca.c -o alloca.o
[ $rc -eq 0 ] && has "call to 'alloca' at alloca.c:3 is not instrumented: it allocates in its caller's frame (alloca)" "$tmp/err" &&
	gcc alloca.o -o alloca_bin && ./alloca_bin
ok $? "alloca named as a target: a warning with file:line, and it stays the caller's"

# ---- inline asm syscalls with arguments in register variables (r10, r8, r9)
for opt in -O0 -O2; do
	rm -f asm.list
	cc_run gcc $opt src/asm_regs.c -o asm_plain
	./asm_plain >asm_plain.out
	cc_run gcc $opt $gp "$(arg syscalls=all)" "$(arg list=asm.list)" src/asm_regs.c -o asm_inst $link
	[ $rc -eq 0 ] && grep -q ' syscall raw_pread pread64 src/asm_regs.c:20$' asm.list &&
		grep -q ' syscall raw_mmap mmap src/asm_regs.c:32$' asm.list &&
		has "inline asm syscall at src/asm_regs.c:44 is not instrumented; govrt's run-time fallback covers it" "$tmp/err" &&
		[ "$(grep -c 'inline asm syscall' "$tmp/err")" -eq 1 ]
	ok $? "asm with r10/r8/r9 register variables: sites; one assigned in another block: a warning with file:line ($opt)"
	./asm_inst >asm_inst.out 2>"$tmp/err" && cmp -s asm_plain.out asm_inst.out && has "pread=3 ELF" asm_inst.out &&
		has "mmap=mapped" asm_inst.out
	ok $? "... no agent: the plain build's output ($opt)"
	start_agent src/asm_regs.yaml
	GOV_RESOURCE=gp ./asm_inst >asm_gov.out 2>"$tmp/err"
	stats
	stop_agent
	cp "$tmp/stats" asm.stats
	cmp -s asm_plain.out asm_gov.out && has '"to":"pread64","calls":1' asm.stats &&
		has '"to":"mmap","calls":1' asm.stats
	ok $? "... traced: through the agent and back, the registers' words intact ($opt)"
	start_agent src/asm_regs_deny.yaml
	GOV_RESOURCE=gp ./asm_inst >asm_gov.out 2>"$tmp/err"
	stop_agent
	has "pread=2" asm_gov.out && has "mmap=-12" asm_gov.out
	ok $? "... emulated and denied: the value and -errno in rax ($opt)"
done

# ---- #pragma gov_native
for lang in c c++; do
	rm -f pragma.list
	cc_run gcc -x $lang -O2 -Isrc $gp "$(arg targets=twice)" "$(arg list=pragma.list)" -c src/pragma.c -o pragma.o
	[ $rc -eq 0 ] && [ ! -s "$tmp/err" ] && [ "$(cut -d' ' -f3 pragma.list | sort | tr '\n' ' ')" = "plain_after plain_before " ]
	ok $? "#pragma gov_native(NAME, ...) before and after the definition, and push ... pop ($lang)"
done
cc_run gcc $gp -c src/pragma_bad.c -o pragma_bad.o
[ $rc -eq 0 ] && has "pragma_bad.c:3:" "$tmp/err" && has "expected '(', 'push' or 'pop' after '#pragma gov_native'" "$tmp/err" &&
	has "pragma_bad.c:4:20: warning: govintercept: expected a function name" "$tmp/err" &&
	has "pragma_bad.c:5:22: warning: govintercept: expected ',' or ')'" "$tmp/err" &&
	has "pragma_bad.c:6:20: warning: govintercept: '#pragma gov_native pop' without a push" "$tmp/err" &&
	has "pragma_bad.c:7:25: warning: govintercept: junk at the end of '#pragma gov_native push'" "$tmp/err" &&
	has "pragma_bad.c:8:20: warning: govintercept: '#pragma gov_native push' without a pop" "$tmp/err"
ok $? "a malformed #pragma gov_native: a warning with its position, the compile goes on"
cc_run gcc -c src/pragma.c -Isrc -o plainpragma.o
[ $rc -eq 0 ] && [ ! -s "$tmp/err" ]
ok $? "without the plugin GCC ignores #pragma gov_native silently"

# ---- exports-of: every function a registered resource exports (govctl)
govctl=${GOVCTL:-$top/build/bin/govctl}
store="sqlite:$tmp/store.db"
"$govctl" --store "$store" init >/dev/null
printf '# exported by helpers\ntwice\tll\tlong twice(long x)\nscale\tddf\n' >helpers.exports
"$govctl" --store "$store" register helpers --type service --exports greet --exports-file helpers.exports >/dev/null
cc_run gcc -O2 -Isrc $gp "$(arg exports-of=helpers)" "$(arg store=$store)" "$(arg list=ex.list)" -c src/calls.c -o ex.o
[ $rc -eq 0 ] && [ "$(cut -d' ' -f4 ex.list | sort -u | tr '\n' ' ')" = "greet scale twice " ]
ok $? "exports-of: every function the resource exports, typed or not, is a target (govctl found beside the plugin)"
rm -f ex.list
GOV_STORE=$store cc_run gcc -O2 -Isrc $gp "$(arg exports-of=helpers)" "$(arg govctl=$govctl)" "$(arg list=ex.list)" -c src/calls.c -o ex.o
[ $rc -eq 0 ] && [ "$(cut -d' ' -f4 ex.list | sort -u | tr '\n' ' ')" = "greet scale twice " ]
ok $? "exports-of: the store from GOV_STORE, govctl from govctl="
cc_run gcc $gp "$(arg exports-of=nobody)" "$(arg store=$store)" -c empty.c -o x.o
[ $rc -ne 0 ] && has "exited with 3: govctl: exports: no resource 'nobody'" "$tmp/err"
ok $? "exports-of an unknown resource is an error with govctl's words"
cc_run gcc $gp "$(arg exports-of=helpers)" "$(arg store=$store)" "$(arg govctl=/nonexistent/govctl)" -c empty.c -o x.o
[ $rc -ne 0 ] && has "exports-of=helpers: cannot run '/nonexistent/govctl': No such file or directory" "$tmp/err"
ok $? "exports-of with a govctl that cannot be run is an error naming it"
cc_run gcc $gp "$(arg exports-of=helpers)" "$(arg store=sqlite:/nonexistent/dir/s.db)" -c empty.c -o x.o
[ $rc -ne 0 ] && has "exited with 4" "$tmp/err" && has "/nonexistent/dir/s.db" "$tmp/err"
ok $? "exports-of with a store that cannot be opened is an error"
cc_run gcc $gp "$(arg exports-of=.bad)" -c empty.c -o x.o
[ $rc -ne 0 ] && has "exports-of='.bad': a resource name" "$tmp/err"
ok $? "exports-of with a bad resource name is an error"
cc_run gcc $gp "$(arg exports-of=helpers)" "$(arg store=$store)" "$(arg verbose)" -c empty.c -o x.o
[ $rc -eq 0 ] && has "exports-of target 'twice' matches no function called in empty.c" "$tmp/err" &&
	! has "warning" "$tmp/err"
ok $? "an export no call matches: silent, a note with verbose"

finish
