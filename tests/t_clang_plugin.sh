#!/bin/sh
# tests/t_clang_plugin.sh - govintercept-llvm.so (clang-plugin/) against the
# GCC plugin: the programs of tests/gcc-plugin/ (and tests/clang-plugin/)
# built with clang + plugin at -O0, -O2, -flto and more print the same bytes
# as the plain build with no agent; under a govagent, deny, emulate and
# trace apply to calls and syscalls exactly as with gcc; gcc and clang give
# the same site listing and the same site records (ids, kinds, types,
# file:line); objects from both compilers link into one governed program; a
# shared object, C++ with exceptions; every option and every bad input;
# govexports. TAP output for prove.
# $cgp, $gp, $link and $opt are lists of flags, split on purpose:
# shellcheck disable=SC2086
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
plugin=${GOVINTERCEPT_LLVM:-$top/build/lib/govintercept-llvm.so}
gplugin=${GOVINTERCEPT:-$top/build/lib/govintercept.so}
govagent=${GOVAGENT:-$top/build/bin/govagent}
govexports=${GOVEXPORTS:-$top/build/bin/govexports}
lib=${GOVRT_LIBDIR:-$top/build/lib}
tmp=$(mktemp -d /tmp/clang-plugin.XXXXXX)
agent=""
cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/tests/tap.sh"
has() { grep -qF -- "$1" "$2"; }

for f in "$plugin" "$gplugin" "$govagent" "$govexports" "$lib/libgovrt.so"; do
	if [ ! -e "$f" ]; then
		echo "Bail out! $f is missing: run make (or set GOVINTERCEPT_LLVM, GOVINTERCEPT, GOVAGENT, GOVEXPORTS, GOVRT_LIBDIR)"
		exit 1
	fi
done

export LC_ALL=C
mkdir "$tmp/src"
cp "$top"/tests/gcc-plugin/* "$top"/tests/clang-plugin/* "$tmp/src/"
cd "$tmp" || exit 1
mkdir run
export GOV_RUN_DIR="$tmp/run"
unset GOV_RESOURCE GOV_FAIL

# the clang plugin: both halves, locations, the IR verifier after rewriting
cgp="-fpass-plugin=$plugin -Xclang -load -Xclang $plugin -Rpass=govintercept -mllvm -gov-verify"
m() { echo "-mllvm -gov-$1"; }
gp="-fplugin=$gplugin"
g() { echo "-fplugin-arg-govintercept-$1"; }
link="-L$lib -Wl,-rpath,$lib -lgovrt"
targets=twice:scale:sum6:count_nonzero:fill:greet:neg16:low8:mix:note:from_other_unit

agent_resource=gp
. "$top/tests/agent.sh"
stats() { "$govagent" --stats gp >"$tmp/stats" 2>"$tmp/err"; }

# ---- 0. the GCC plugin's build of calls.c: the reference
run gcc -O2 -Isrc $gp "$(g targets=$targets)" "$(g syscalls=all)" "$(g list=gcc.list)" \
	src/calls.c src/helper.c src/dumpsites.c -I"$top/include" -o gcc.inst $link
ok $rc "reference: calls.c builds with gcc and govintercept.so"
./gcc.inst >gcc.out 2>"$tmp/err"
start_agent src/govern.yaml
GOV_RESOURCE=gp ./gcc.inst >gcc.gov 2>"$tmp/err"
stop_agent
GOV_DUMP_SITES=1 ./gcc.inst | sort >gcc.sites

# ---- 1. behaviour: plain and instrumented print the same; agents govern
i=0
for opt in "-O0" "-O2" "-O2 -flto"; do
	i=$((i + 1))
	run clang $opt -Isrc src/calls.c src/helper.c -o plain$i
	ok $rc "calls.c builds plain with clang ($opt)"
	run clang $opt -Isrc $cgp $(m targets=$targets) $(m syscalls=all) $(m list=list$i) \
		src/calls.c src/helper.c -o inst$i $link
	ok $rc "calls.c builds with govintercept-llvm.so ($opt)"
	./plain$i >plain$i.out 2>"$tmp/err"
	./inst$i >inst$i.out 2>>"$tmp/err"
	cmp -s plain$i.out inst$i.out && cmp -s inst$i.out gcc.out
	ok $? "no agent: same output as the plain build, and as gcc's ($opt)"

	start_agent src/govern.yaml
	GOV_RESOURCE=gp ./inst$i >gov.out 2>"$tmp/err"
	stop_agent
	cp gov.out "$tmp/err"
	has "twice 7" gov.out && has "pair 14" gov.out && has "other 8" gov.out
	ok $? "emulate a call: twice returns 7 at every site, in both units ($opt)"
	has "native_twice 10" gov.out
	ok $? "gov_native keeps a function's body native ($opt)"
	has "unlink -1/EACCES, file stays" gov.out
	ok $? "deny a call: unlink returns -1 with errno EACCES ($opt)"
	has "getppid wrapper=4242 syscall=4242 asm=4242" gov.out &&
		has "getpid wrapper=-1/EACCES syscall=-1/EACCES asm=-13" gov.out
	ok $? "emulate and deny a syscall: wrapper, syscall(2), inline asm ($opt)"
	cmp -s gov.out gcc.gov
	ok $? "under the same rules, the same output as the gcc build ($opt)"

	start_agent src/trace.yaml
	GOV_RESOURCE=gp ./inst$i >trace.out 2>"$tmp/err"
	stats
	stop_agent
	cmp -s plain$i.out trace.out && has '"calls":13,' "$tmp/stats" &&
		has '"to":"note","calls":2' "$tmp/stats"
	ok $? "trace: same output, the agent counted the 13 traced calls ($opt)"
done

for opt in "-O1" "-O3" "-Os" "-O2 -fPIE -pie" "-O2 -ffunction-sections -fdata-sections -Wl,--gc-sections" \
	"-O2 -flto=thin" "-O2 -flto -fuse-ld=lld" "-O2 -g"; do
	clang $opt -Isrc $cgp $(m targets=$targets) $(m syscalls=all) src/calls.c \
		src/helper.c -o more $link >"$tmp/out" 2>"$tmp/err" && ./more >more.out 2>>"$tmp/err" &&
		cmp -s plain2.out more.out
	ok $? "$opt: builds, same output with no agent"
	start_agent src/govern.yaml
	GOV_RESOURCE=gp ./more >gov.out 2>"$tmp/err"
	stop_agent
	cmp -s gov.out gcc.gov
	ok $? "$opt: every site governed, as with gcc"
done

# ---- 2. parity of the site table with the GCC plugin
cp list2 "$tmp/err"
[ "$(wc -l <list2)" -eq 30 ] && ! grep -vqE '^[0-9a-f]{16} (call|syscall) [^ ]+ [^ ]+ [^ ]+:[0-9]+$' list2
ok $? "list=: one line per site (30), each id kind caller callee file:line"
sort gcc.list >gcc.sorted
for k in 1 2 3; do sort list$k >sorted$k; done
cmp -s sorted1 sorted2 && cmp -s sorted2 sorted3
ok $? "the same source gives the same sites and ids at -O0, -O2 and -flto"
diff gcc.sorted sorted2 >"$tmp/out"
ok $? "gcc and clang list the same sites: ids, kinds, callers, callees, file:line"
run clang -O2 -Isrc $cgp $(m targets=$targets) $(m syscalls=all) -I"$top/include" \
	src/calls.c src/helper.c src/dumpsites.c -o clang.inst $link
GOV_DUMP_SITES=1 ./clang.inst | sort >clang.sites
[ -s gcc.sites ] && diff gcc.sites clang.sites >"$tmp/out"
ok $? "gcc and clang emit the same site records (types, ret_conv, sysno, nparams)"
for cc in gcc clang; do
	if [ $cc = gcc ]; then fl="$gp $(g targets=t_*:printf) $(g syscalls=all)"
	else fl="$cgp $(m targets=t_*:printf) $(m syscalls=all)"; fi
	$cc -O2 -I"$top/include" $fl src/types.c src/dumpsites.c -o types.$cc $link 2>"$tmp/err"
	GOV_DUMP_SITES=1 ./types.$cc | sort >types.$cc.sites
	./types.$cc >types.$cc.out
done
[ "$(wc -l <types.clang.sites)" -eq 16 ] && diff types.gcc.sites types.clang.sites >"$tmp/out" &&
	cmp -s types.gcc.out types.clang.out
ok $? "every type code, variadic calls, nested calls on one line: the same 16 records"
cc_siteid() { gcc -I"$top/include" src/siteid.c -o siteid 2>"$tmp/err"; }
cc_siteid
pair=$(grep -n 'twice(1) + twice(2)' src/calls.c | cut -d: -f1)
want=$(./siteid src/calls.c "$pair" main "twice#2")
grep -q "^$want call main twice src/calls.c:$pair\$" list2
ok $? "the second site on a line hashes callee#2 (gov/abi.h's gov_site_id)"
for k in 1 2; do
	clang -O2 -Isrc $cgp $(m targets=$targets) $(m syscalls=all) -c src/calls.c -o repro$k.o 2>"$tmp/err"
done
cmp -s repro1.o repro2.o
ok $? "two compiles give byte-identical objects"
# each site's slow path is a function of its own (pass.cc, README "Cost"):
# the callers keep a load, a branch and a call, never __govrt_dispatch
objdump -dr repro1.o | awk '/^[0-9a-f]+ <.*>:$/ { fn = $2 } /__govrt_dispatch/ { print fn }' \
	>dispatchers
[ -s dispatchers ] && ! grep -qv '\.slow>:$' dispatchers
ok $? "__govrt_dispatch is called only from the sites' out-of-line slow paths ($(wc -l <dispatchers) of them; $(grep -cv '\.slow>:$' dispatchers) elsewhere)"
[ "$(objdump -h inst2 | awk '$2 == "gov_sites" { print $3 }')" = "$(printf '%08x' $((30 * 64)))" ]
ok $? "the executable's gov_sites section holds 30 records of 64 bytes"
clang -O2 -Isrc -c src/calls.c -o noplug.o && clang -O2 -Isrc -Rpass=govintercept -c src/calls.c -o rpass.o &&
	[ "$(objdump -d noplug.o | tail -n +3 | md5sum)" = "$(objdump -d rpass.o | tail -n +3 | md5sum)" ]
ok $? "-Rpass=govintercept alone changes no instruction (it only tracks locations)"

# ---- 3. one program, objects from both compilers
run gcc -O2 -Isrc $gp "$(g targets=twice)" -c src/helper.c -o helper.gcc.o
ok $rc "mixed: helper.c built by gcc with govintercept.so"
run clang -O2 -Isrc $cgp $(m targets=twice:from_other_unit) -c src/mixed.c -o mixed.clang.o
ok $rc "mixed: mixed.c built by clang with govintercept-llvm.so"
run clang mixed.clang.o helper.gcc.o -o mixed $link
[ $rc -eq 0 ] && [ "$(./mixed)" = "$(printf 'twice 42\nother 9')" ]
ok $? "mixed: links and runs natively with no agent"
start_agent src/govern.yaml
GOV_RESOURCE=gp ./mixed >mixed.out 2>"$tmp/err"
stop_agent
[ "$(cat mixed.out)" = "$(printf 'twice 7\nother 8')" ]
ok $? "mixed: both compilers' sites are governed (emulated) in one module"
[ "$(objdump -h mixed | awk '$2 == "gov_sites" { print $3 }')" = "$(printf '%08x' $((3 * 64)))" ]
ok $? "mixed: one gov_sites array of 3 records"

# ---- 4. a shared object and an executable, each with its own sites
run clang -O2 -fPIC -shared $cgp $(m targets=inner_value) src/shlib.c -o libgp.so $link
ok $rc "a shared object builds with -fPIC and the plugin"
run clang -O2 $cgp $(m targets=lib_entry) src/shmain.c -o shmain -L. -Wl,-rpath,"$tmp" -lgp $link
ok $rc "an executable using it builds with the plugin"
[ "$(./shmain)" = "$(printf 'lib_entry 20\nlib_entry 30')" ]
ok $? "no agent: native results"
start_agent src/shared.yaml
GOV_RESOURCE=gp ./shmain >sh.out 2>"$tmp/err"
stats
stop_agent
[ "$(cat sh.out)" = "$(printf 'lib_entry 410\nlib_entry 410')" ] &&
	has '"to":"lib_entry","calls":2' "$tmp/stats"
ok $? "the shared object's site is emulated, the executable's traced"

# ---- 5. C++
g++ -O2 -Isrc $gp "$(g targets=billing::*:twice)" "$(g syscalls=all)" "$(g list=gxx.list)" \
	-c src/calls.cc -o gxx.o 2>"$tmp/err"
for opt in -O0 -O2; do
	run clang++ $opt -Isrc src/calls.cc src/cxxhelper.cc -o cplain
	rm -f cxx.list
	clang++ $opt -Isrc $cgp $(m targets=billing::*:twice) $(m syscalls=all) $(m list=cxx.list) \
		-c src/calls.cc -o calls.o 2>"$tmp/err" &&
		clang++ $opt calls.o src/cxxhelper.cc -o cinst $link 2>>"$tmp/err"
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
	sort gxx.list >gxx.sorted
	sort cxx.list | diff gxx.sorted - >"$tmp/out"
	ok $? "C++: the same sites as g++ with govintercept.so ($opt)"
done

# ---- 6. options and bad input
echo 'int main(void) { return 0; }' >empty.c
run clang $cgp -mllvm -gov-frobnicate=1 -c empty.c
[ $rc -ne 0 ] && has "Unknown command line argument '-gov-frobnicate=1'" "$tmp/err"
ok $? "an unknown -mllvm option is an error naming it"
run clang $cgp -Xclang -plugin-arg-govintercept -Xclang frobnicate -c empty.c
[ $rc -ne 0 ] && has "govintercept: unknown option 'frobnicate'" "$tmp/err"
ok $? "an unknown -plugin-arg is an error naming it"
run clang $cgp $(m targets-file=/nonexistent/targets.txt) -c empty.c
[ $rc -ne 0 ] && has "cannot read targets-file '/nonexistent/targets.txt': No such file or directory" "$tmp/err"
ok $? "an unreadable targets-file is an error with the path and the errno text"
run clang $cgp $(m targets-file=src) -c empty.c
[ $rc -ne 0 ] && has "cannot read targets-file 'src': Is a directory" "$tmp/err"
ok $? "a targets-file that is a directory: the same"
run clang $cgp $(m targets-header=/nonexistent/api.h) -c empty.c
[ $rc -ne 0 ] && has "cannot read targets-header '/nonexistent/api.h'" "$tmp/err"
ok $? "an unreadable targets-header is an error"
run clang $cgp $(m syscalls=getppid:bogus) -c empty.c
[ $rc -ne 0 ] && has "'bogus' is neither an x86-64 syscall nor a glibc syscall wrapper" "$tmp/err"
ok $? "an unknown syscall name is an error"
run clang $cgp $(m resource=.hidden/x) -c empty.c
[ $rc -ne 0 ] && has "-gov-resource='.hidden/x'" "$tmp/err"
ok $? "a bad resource name is an error"
run clang $cgp -mllvm -gov-list= -c empty.c
[ $rc -ne 0 ] && has "option '-gov-list' needs a value" "$tmp/err"
ok $? "an option without its value is an error"
run clang $cgp $(m help) -c empty.c -o empty.o
[ $rc -eq 0 ] && has "-gov-targets=GLOB" "$tmp/err" && has "-gov-list=PATH" "$tmp/err" && [ -s empty.o ] &&
	has "-gov-exports-of=RESOURCE" "$tmp/err" && has "-gov-store=URL" "$tmp/err" &&
	has "-gov-govctl=PATH" "$tmp/err" && has "-gov-unmatched=warn|ignore" "$tmp/err" &&
	has "#pragma gov_native(NAME" "$tmp/err"
ok $? "-gov-help prints the options and compiles on"
run clang -fpass-plugin="$plugin" -Xclang -load -Xclang "$plugin" $(m targets=twice) -c empty.c
[ $rc -ne 0 ] && has "add -Rpass=govintercept" "$tmp/err"
ok $? "without -Rpass=govintercept or -g: an error saying what to add"
run clang -fpass-plugin="$plugin" -Rpass=govintercept -c empty.c
[ $rc -ne 0 ] && has "the clang half is not loaded: add -Xclang -load" "$tmp/err"
ok $? "without -Xclang -load: an error saying what to add"
# targets that match nothing: the GCC plugin's warning, word for word
run clang -O2 -Isrc $cgp $(m targets=no_such_function:twice:nope_*) -c src/calls.c -o nomatch.o
[ $rc -eq 0 ] && has "warning: govintercept: targets= 'no_such_function', 'nope_*' matched no function called in src/calls.c (-gov-unmatched=ignore silences this)" "$tmp/err" &&
	[ "$(grep -c 'matched no function' "$tmp/err")" -eq 1 ] && [ -s nomatch.o ]
ok $? "-gov-targets names that match nothing: one warning per unit naming them, not an error"
grep -o "targets= .* matched no function called in src/calls.c" "$tmp/err" >clang.unmatched
run gcc -O2 -Isrc $gp "$(g targets=no_such_function:twice:nope_*)" -c src/calls.c -o gnomatch.o
grep -o "targets= .* matched no function called in src/calls.c" "$tmp/err" >gcc.unmatched
[ -s gcc.unmatched ] && cmp -s gcc.unmatched clang.unmatched
ok $? "... the same names as the GCC plugin's warning"
run clang -O2 -Isrc $cgp $(m targets=no_such_function) -Werror -c src/calls.c -o nomatch.o
[ $rc -ne 0 ] && has "error: govintercept: targets= 'no_such_function' matched no function" "$tmp/err"
ok $? "... an error under -Werror, like any warning"
run clang -O2 -Isrc $cgp $(m targets=no_such_function) -w -c src/calls.c -o nomatch.o
[ $rc -eq 0 ] && [ ! -s "$tmp/err" ]
ok $? "... and silent under -w"
run clang -O2 -Isrc $cgp $(m targets=no_such_function) $(m unmatched=ignore) -Werror -c src/calls.c -o nomatch.o
[ $rc -eq 0 ] && [ ! -s "$tmp/err" ]
ok $? "... -gov-unmatched=ignore silences it"
run clang $cgp $(m unmatched=sometimes) -c empty.c -o x.o
[ $rc -ne 0 ] && has "-gov-unmatched='sometimes': the value is 'warn' or 'ignore'" "$tmp/err"
ok $? "... a bad -gov-unmatched value is an error"
printf 'no_such_function\ntwice\n' >nomatch.txt
run clang -O2 -Isrc $cgp $(m targets-file=nomatch.txt) -c src/calls.c -o nomatch.o
[ $rc -eq 0 ] && [ ! -s "$tmp/err" ]
ok $? "a -gov-targets-file name that matches nothing: silent (a bulk list)"
run clang -O2 -Isrc $cgp $(m targets-file=nomatch.txt) $(m verbose) -c src/calls.c -o nomatch.o
[ $rc -eq 0 ] && has "remark: govintercept: targets-file target 'no_such_function' matches no function called in src/calls.c" "$tmp/err" &&
	! has "target 'twice'" "$tmp/err" && ! has "warning" "$tmp/err"
ok $? "... a remark with -gov-verbose"
run clang $cgp $(m targets-header=src/helper.h) -c empty.c -o x.o
[ $rc -eq 0 ] && has "warning: govintercept: targets-header 'src/helper.h' declares no function called in empty.c" "$tmp/err"
ok $? "a -gov-targets-header that declares no callee: a warning"
run clang -O2 -Isrc $cgp $(m targets=no_such_function) $(m unmatched=ignore) -c src/calls.c -o nomatch.o
nm nomatch.o >"$tmp/out"
! has __govrt_ "$tmp/out" && clang nomatch.o src/helper.c -Isrc -o nomatch 2>"$tmp/err"
ok $? "a unit without sites does not reference govrt (links without -lgovrt)"
run clang -O2 -Isrc $cgp $(m targets=twice) $(m verbose) -c src/calls.c -o verbose.o
id=$(grep ' main twice src/calls.c:58$' list2 | cut -c1-16)
has "calls.c:58:24: remark: govintercept: site $id: main calls twice (types ll)" "$tmp/err"
ok $? "-gov-verbose: a remark at each site with its id and types"
run clang -O2 -Isrc $cgp $(m targets=by_value:seven) $(m syscalls=all) -c src/warn.c -o warn.o
[ $rc -eq 0 ] && has "src/warn.c:16:2: warning: govintercept: inline asm syscall at src/warn.c:16 is not instrumented; govrt's run-time fallback covers it" "$tmp/err"
ok $? "an inline asm syscall it cannot rewrite: a warning with file:line"
has "syscall(2) with a number not known at compile time at src/warn.c:22 is not instrumented" "$tmp/err"
ok $? "syscall(2) with a variable number: a warning with file:line"
has "call to 'seven' at src/warn.c:28 is not instrumented: it passes more arguments" "$tmp/err" &&
	! grep -q "call to 'by_value'" "$tmp/err"
ok $? "seven arguments: a warning with file:line; a struct by value is no longer one"
run clang -O2 -Isrc $cgp $(m targets=by_value) $(m verbose) -c src/warn.c -o warn.o
[ $rc -eq 0 ] && has "structs calls by_value (types l{ll})" "$tmp/err"
ok $? "a struct by value is a site: its type string l{ll}, as GCC's"
run clang -O2 -Isrc $cgp $(m targets=by_union:by_bits:by_packed:by_flex:by_huge) -c src/structs.c -o structs.o
[ $rc -eq 0 ] &&
	has "call to 'by_union' at src/structs.c:22 is not instrumented: a union by value" "$tmp/err" &&
	has "call to 'by_bits' at src/structs.c:22 is not instrumented: a bit-field in a struct" "$tmp/err" &&
	has "call to 'by_packed' at src/structs.c:22 is not instrumented: a struct whose layout is not C's natural one (packed or aligned)" "$tmp/err" &&
	has "call to 'by_flex' at src/structs.c:22 is not instrumented: a flexible or zero-length array in a struct" "$tmp/err" &&
	has "call to 'by_huge' at src/structs.c:22 is not instrumented: its type string (struct layouts) is longer than 47 characters" "$tmp/err"
ok $? "a struct no type string can express keeps its warning, with GCC's reason"
run clang -O2 -Isrc $cgp $(m targets-file=src/targets.txt) $(m list=tf.list) -c src/calls.c -o tf.o
[ $rc -eq 0 ] && [ "$(cut -d' ' -f4 tf.list | sort -u | tr '\n' ' ')" = "sum6 twice " ]
ok $? "targets-file: globs, comments and blank lines"
run clang -O2 -Isrc $cgp $(m targets-header=src/api.h) $(m list=th.list) -c src/api_user.c -o th.o
[ $rc -eq 0 ] && [ "$(cut -d' ' -f4 th.list | sort | tr '\n' ' ')" = "api_close api_open " ]
ok $? "targets-header: every function declared in the header, and only those"
run clang -O2 -Isrc $cgp $(m syscalls=getppid) $(m list=sc.list) -c src/calls.c -o sc.o
[ $rc -eq 0 ] && [ "$(cut -d' ' -f2-4 sc.list | sort | tr '\n' ' ')" = \
	"call main getppid syscall main getppid syscall raw_getppid getppid " ]
ok $? "syscalls=NAME: the wrapper, syscall(2) and asm sites of that syscall only"
run clang -O2 -Isrc $cgp $(m targets=twice) $(m syscalls=none) $(m list=none.list) -c src/calls.c -o none.o
[ $rc -eq 0 ] && ! grep -qv ' twice ' none.list
ok $? "syscalls=none: call sites only"
run clang -O2 -Isrc $cgp $(m targets=twice) $(m list=/nonexistent/dir/list) -c src/calls.c -o x.o
[ $rc -ne 0 ] && has "cannot open list '/nonexistent/dir/list'" "$tmp/err"
ok $? "an unwritable list is an error"
run clang -O2 -Isrc $cgp $(m targets=twice) $(m resource=gp) src/calls.c src/helper.c -o builtin $link
start_agent src/govern.yaml
./builtin >builtin.out 2>"$tmp/err"
stop_agent
[ $rc -eq 0 ] && has "twice 7" builtin.out
ok $? "resource=: the module names its resource (no GOV_RESOURCE needed)"
printf '#include <string.h>\nvoid cp(char *d, const char *s) { memcpy(d, s, 4); }\n' >lowered.c
run clang -O2 $cgp $(m targets=memcpy) -c lowered.c -o lowered.o
[ $rc -eq 0 ] && has "call to 'memcpy' at lowered.c:2 is not instrumented: clang emits it as an LLVM intrinsic" "$tmp/err"
ok $? "a target clang lowers to an LLVM intrinsic (memcpy): a warning with file:line"
printf 'void f(void) __attribute__((gov_native));\nint gov_native_var __attribute__((gov_native));\n' >attr.c
run clang $cgp -c attr.c -o attr.o
[ $rc -eq 0 ] && has "attr.c:2:" "$tmp/err"
ok $? "gov_native on a variable: a warning with its position"

printf '#include <stddef.h>\nvoid *alloca(size_t n); /* GCC builtin, no macro */\nint main(int c, char **v) { char *p = alloca(c + 8); p[0] = v[0][0]; return p[0] == 0; }\n' >alloca.c
run clang -O2 $cgp $(m targets=alloca) -c alloca.c -o alloca.o
[ $rc -eq 0 ] && has "alloca.c:3:39: warning: govintercept: call to 'alloca' at alloca.c:3 is not instrumented: it allocates in its caller's frame (alloca)" "$tmp/err" &&
	clang alloca.o -o alloca_bin && ./alloca_bin
ok $? "alloca named as a target: a warning with file:line (as gcc's), and it stays the caller's"

# ---- 6b. inline asm syscalls with arguments in register variables (r10, r8, r9)
run gcc -O2 $gp "$(g syscalls=all)" "$(g list=gasm.list)" src/asm_regs.c -o gasm_inst $link
grep -o 'inline asm syscall at [^ ]*' "$tmp/err" >gasm.warn
for opt in -O0 -O2 "-O2 -flto"; do
	rm -f asm.list
	run clang $opt src/asm_regs.c -o asm_plain
	./asm_plain >asm_plain.out
	run clang $opt $cgp $(m syscalls=all) $(m list=asm.list) src/asm_regs.c -o asm_inst $link
	grep -o 'inline asm syscall at [^ ]*' "$tmp/err" >asm.warn
	[ $rc -eq 0 ] && grep -q ' syscall raw_pread pread64 src/asm_regs.c:20$' asm.list &&
		grep -q ' syscall raw_mmap mmap src/asm_regs.c:32$' asm.list &&
		has "src/asm_regs.c:44:2: warning: govintercept: inline asm syscall at src/asm_regs.c:44 is not instrumented; govrt's run-time fallback covers it" "$tmp/err" &&
		[ "$(grep -c 'inline asm syscall' "$tmp/err")" -eq 1 ] &&
		cmp -s gasm.warn asm.warn && [ "$(sort asm.list)" = "$(sort gasm.list)" ]
	ok $? "asm with r10/r8/r9 register variables: gcc's sites and ids; assigned in another block: gcc's warning ($opt)"
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
run gcc -O2 $gp "$(g syscalls=all)" "$(g list=gmore.list)" -c src/asm_more.c -o gmore.o
grep -o 'inline asm syscall at [^ ]*' "$tmp/err" >gmore.warn
run clang -O2 $cgp $(m syscalls=all) $(m list=cmore.list) -c src/asm_more.c -o cmore.o
grep -o 'inline asm syscall at [^ ]*' "$tmp/err" >cmore.warn
[ $rc -eq 0 ] && [ -s gmore.warn ] && cmp -s gmore.warn cmore.warn && [ "$(sort gmore.list)" = "$(sort cmore.list)" ]
ok $? "asm register variables from memory, re-assigned after a branch, changed in between: the GCC plugin's warnings and sites"

# ---- 6c. #pragma gov_native
for lang in c c++; do
	rm -f pragma.list gpragma.list
	run clang -x $lang -O2 -Isrc $cgp $(m targets=twice) $(m list=pragma.list) -c src/pragma.c -o pragma.o
	[ $rc -eq 0 ] && [ ! -s "$tmp/err" ] && [ "$(cut -d' ' -f3 pragma.list | sort | tr '\n' ' ')" = "plain_after plain_before " ]
	ok $? "#pragma gov_native(NAME, ...) before and after the definition, and push ... pop ($lang)"
	run gcc -x $lang -O2 -Isrc $gp "$(g targets=twice)" "$(g list=gpragma.list)" -c src/pragma.c -o gpragma.o
	[ "$(sort pragma.list)" = "$(sort gpragma.list)" ]
	ok $? "... the GCC plugin's listing ($lang)"
done
run clang $cgp -c src/pragma_bad.c -o pragma_bad.o
[ $rc -eq 0 ] && has "pragma_bad.c:3:19: warning: govintercept: expected '(', 'push' or 'pop' after '#pragma gov_native'" "$tmp/err" &&
	has "pragma_bad.c:4:20: warning: govintercept: expected a function name" "$tmp/err" &&
	has "pragma_bad.c:5:22: warning: govintercept: expected ',' or ')'" "$tmp/err" &&
	has "pragma_bad.c:6:20: warning: govintercept: '#pragma gov_native pop' without a push" "$tmp/err" &&
	has "pragma_bad.c:7:25: warning: govintercept: junk at the end of '#pragma gov_native push'" "$tmp/err" &&
	has "pragma_bad.c:8:20: warning: govintercept: '#pragma gov_native push' without a pop" "$tmp/err" &&
	[ "$(grep -c 'warning: govintercept' "$tmp/err")" -eq 6 ]
ok $? "a malformed #pragma gov_native: a warning with line:column, the compile goes on"
run clang -x c++ $cgp -c src/pragma_bad.c -o pragma_bad.o
[ $rc -eq 0 ] && [ "$(grep -c 'warning: govintercept' "$tmp/err")" -eq 6 ]
ok $? "... in C++ too"

# ---- 6d. exports-of: every function a registered resource exports (govctl)
govctl=${GOVCTL:-$top/build/bin/govctl}
store="sqlite:$tmp/store.db"
"$govctl" --store "$store" init >/dev/null
printf '# exported by helpers\ntwice\tll\tlong twice(long x)\nscale\tddf\n' >helpers.exports
"$govctl" --store "$store" register helpers --type service --exports greet --exports-file helpers.exports >/dev/null
rm -f ex.list gex.list
run clang -O2 -Isrc $cgp $(m exports-of=helpers) $(m store=$store) $(m list=ex.list) -c src/calls.c -o ex.o
[ $rc -eq 0 ] && [ "$(cut -d' ' -f4 ex.list | sort -u | tr '\n' ' ')" = "greet scale twice " ]
ok $? "exports-of: every function the resource exports, typed or not, is a target (govctl found beside the plugin)"
run gcc -O2 -Isrc $gp "$(g exports-of=helpers)" "$(g store=$store)" "$(g list=gex.list)" -c src/calls.c -o gex.o
[ "$(sort ex.list)" = "$(sort gex.list)" ]
ok $? "... the GCC plugin's listing"
rm -f ex.list
GOV_STORE=$store run clang -O2 -Isrc $cgp $(m exports-of=helpers) $(m govctl=$govctl) $(m list=ex.list) -c src/calls.c -o ex.o
[ $rc -eq 0 ] && [ "$(cut -d' ' -f4 ex.list | sort -u | tr '\n' ' ')" = "greet scale twice " ]
ok $? "exports-of: the store from GOV_STORE, govctl from -gov-govctl"
mkdir -p elsewhere/lib pathbin
ln -sf "$plugin" elsewhere/lib/gi.so
ln -sf "$govctl" pathbin/govctl
rm -f ex.list
PATH="$tmp/pathbin:$PATH" run clang -O2 -Isrc -fpass-plugin=elsewhere/lib/gi.so -Xclang -load -Xclang elsewhere/lib/gi.so \
	-Rpass=govintercept $(m exports-of=helpers) $(m store=$store) $(m list=ex.list) -c src/calls.c -o ex.o
[ $rc -eq 0 ] && [ "$(cut -d' ' -f4 ex.list | sort -u | tr '\n' ' ')" = "greet scale twice " ]
ok $? "exports-of: no govctl beside the plugin: the one on PATH"
run clang $cgp $(m exports-of=nobody) $(m store=$store) -c empty.c -o x.o
[ $rc -ne 0 ] && has "error: govintercept: -gov-exports-of=nobody: " "$tmp/err" &&
	has "exited with 3: govctl: exports: no resource 'nobody'" "$tmp/err"
ok $? "exports-of an unknown resource is an error with govctl's words"
run clang $cgp $(m exports-of=helpers) $(m store=$store) $(m govctl=/nonexistent/govctl) -c empty.c -o x.o
[ $rc -ne 0 ] && has "-gov-exports-of=helpers: cannot run '/nonexistent/govctl': No such file or directory (give its path with -mllvm -gov-govctl=PATH)" "$tmp/err"
ok $? "exports-of with a govctl that cannot be run is an error naming it"
clang_bin=$(command -v clang)
PATH=/nonexistent run "$clang_bin" -fpass-plugin=elsewhere/lib/gi.so -Xclang -load -Xclang elsewhere/lib/gi.so \
	-Rpass=govintercept $(m exports-of=helpers) -c empty.c -o x.o
[ $rc -ne 0 ] && has "cannot run 'govctl': No such file or directory" "$tmp/err"
ok $? "exports-of with no govctl beside the plugin nor on PATH is an error saying so"
run clang $cgp $(m exports-of=helpers) $(m store=sqlite:/nonexistent/dir/s.db) -c empty.c -o x.o
[ $rc -ne 0 ] && has "exited with 4" "$tmp/err" && has "/nonexistent/dir/s.db" "$tmp/err"
ok $? "exports-of with a store that cannot be opened is an error quoting govctl"
run clang $cgp $(m exports-of=.bad) -c empty.c -o x.o
[ $rc -ne 0 ] && has "-gov-exports-of='.bad': a resource name" "$tmp/err"
ok $? "exports-of with a bad resource name is an error"
run clang $cgp $(m exports-of=helpers) $(m store=$store) $(m verbose) -c empty.c -o x.o
[ $rc -eq 0 ] && has "remark: govintercept: exports-of target 'twice' matches no function called in empty.c" "$tmp/err" &&
	! has "warning" "$tmp/err"
ok $? "an export no call matches: silent, a remark with -gov-verbose"
run clang $cgp $(m exports-of=helpers) $(m store=$store) -c empty.c -o x.o
[ $rc -eq 0 ] && [ ! -s "$tmp/err" ]
ok $? "... and nothing without it"

# ---- 7. govexports
run "$govexports" src/exports.h
cp "$tmp/out" exports.list
[ $rc -eq 0 ] && has "$(printf 'nd_send\tlbz\tlong nd_send(const void *buf, size_t len)')" exports.list &&
	has "$(printf 'nd_recv\tlioz\t')" exports.list && has "$(printf 'nd_name\tpu\t')" exports.list &&
	has "$(printf 'nd_open\tisi\t')" exports.list && has "$(printf 'nd_close\tvi\t')" exports.list &&
	has "$(printf 'nd_rate\tdfd\t')" exports.list
ok $? "govexports: NAME TAB TYPES TAB prototype, with the site table's codes"
has "$(printf 'nd_pair\tl{ll}\t')" exports.list && has "$(printf 'nd_mixed\t{c{fi}2d}{ll}i\t')" exports.list
ok $? "govexports: structs by value as their layouts (nested, arrays)"
has "# skipped nd_packed: a struct whose layout is not C's natural one" exports.list &&
	has "# skipped nd_either: a union by value" exports.list &&
	has "# skipped nd_bits: a bit-field in a struct" exports.list &&
	has "# skipped nd_precise: long double or another floating type" exports.list &&
	has "# skipped nd_log: variadic" exports.list && has "# skipped nd_seven: more than 6 parameters" exports.list
ok $? "govexports: signatures without codes are '# skipped NAME: REASON' lines"
[ "$(grep -c '^nd_send' exports.list)" -eq 1 ] && ! has nd_local exports.list && ! has " read" exports.list &&
	! grep -vE '^(#|[A-Za-z_][A-Za-z0-9_]*	[vilLuzdfpsbo{}ch0-9]+	.*\))' exports.list
ok $? "govexports: each function once, none from included headers, no static ones"
"$govexports" src/helper.h -- -Isrc >helper.list 2>"$tmp/err" &&
	has "$(printf 'count_nonzero\tzbz\t')" helper.list && has "$(printf 'fill\tzozi\t')" helper.list &&
	has "$(printf 'mix\tuulu\t')" helper.list && has "$(printf 'greet\tps\t')" helper.list
ok $? "govexports: helper.h's functions with the codes the plugins give their calls"
grep ' main \(sum6\|fill\|mix\|low8\|neg16\) ' clang.sites | awk '{ print $7, $8 }' | sort >from.sites
for f in sum6 fill mix low8 neg16; do awk -v f=$f -F'\t' '$1 == f { print $1, $2 }' helper.list; done | sort >from.exports
cmp -s from.sites from.exports
ok $? "govexports and the plugins agree on the type strings of the same functions"
run "$govexports" /nonexistent/x.h
[ $rc -ne 0 ] && has "cannot read '/nonexistent/x.h': No such file or directory" "$tmp/err" && [ ! -s "$tmp/out" ]
ok $? "govexports: an unreadable header is an error, nothing printed"
run "$govexports" src/broken.h
[ $rc -ne 0 ] && has "src/broken.h:5:" "$tmp/err" && [ ! -s "$tmp/out" ]
ok $? "govexports: a parse error names file:line, nothing printed"
run "$govexports" src/exports.h -I.
[ $rc -eq 2 ] && has "clang's arguments go after --" "$tmp/err"
ok $? "govexports: a stray argument is a usage error"

finish
