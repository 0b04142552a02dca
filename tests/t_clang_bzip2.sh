#!/bin/sh
# tests/t_clang_bzip2.sh - govintercept-llvm.so on real code: bzip2 from
# Debian's source package (fetched and cached by tests/t_gcc_bzip2.sh
# --prepare, which also builds the GCC plugin's instrumented bzip2), built
# with clang plain and with every syscall wrapper and every call into libc
# instrumented: bzip2's own `make test` passes, the output is the same
# bytes as the plain builds', the site listing is the GCC plugin's, and a
# real govagent traces and denies. TAP output for prove.
#   --prepare   only build (no TAP; exit 0, 77 when the source cannot be
#               fetched, 1 when a build fails); used by bench/sites
# The builds: build/cache/bzip2-clang-plain-work, bzip2-clang-gov-work.
# $cgp and $link are lists of flags, split on purpose:
# shellcheck disable=SC2086
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
plugin=${GOVINTERCEPT_LLVM:-$top/build/lib/govintercept-llvm.so}
govagent=${GOVAGENT:-$top/build/bin/govagent}
lib=${GOVRT_LIBDIR:-$top/build/lib}
cache=${GOV_CACHE:-$top/build/cache}
mode="test"
[ "${1:-}" = "--prepare" ] && mode=prepare
export LC_ALL=C
unset GOV_RESOURCE GOV_FAIL

plain=$cache/bzip2-clang-plain-work
inst=$cache/bzip2-clang-gov-work
gccinst=$cache/bzip2-gov-work
bzflags="-Wall -Winline -O2 -g -D_FILE_OFFSET_BITS=64"
cgp="-fpass-plugin=$plugin -Xclang -load -Xclang $plugin -mllvm -gov-syscalls=all -mllvm -gov-targets-file=$cache/libc-functions.txt"
link="-L$lib -Wl,-rpath,$lib -Wl,--no-as-needed -lgovrt -Wl,--as-needed"

build() { # DIR CFLAGS LDFLAGS
	rm -rf "$1" && cp -r "$cache/bzip2/src" "$1" &&
		make -C "$1" -j2 CC=clang CFLAGS="$2" LDFLAGS="-Wl,-rpath,$1 $3" libbz2.a bzip2 bzip2recover \
			>"$1.log" 2>&1
}

# the source (and the GCC builds) from t_gcc_bzip2.sh; ours are rebuilt
# when the plugin, libgovrt or the source is newer than them
prepare() {
	sh "$top/tests/t_gcc_bzip2.sh" --prepare >"$cache.clang-prepare.log" 2>&1
	rc=$?
	[ $rc -ne 0 ] && return $rc
	exec 9>"$cache/bzip2.lock"
	flock 9
	if [ -x "$plain/bzip2" ] && [ -x "$inst/bzip2" ] &&
		[ -z "$(find "$plugin" "$lib/libgovrt.so.1" "$cache/bzip2/.fetched" -newer "$inst/bzip2")" ]; then
		exec 9>&-
		return 0
	fi
	build "$plain" "$bzflags" ""
	prc=$?
	rm -f "$inst.sites"
	build "$inst" "$bzflags $cgp -Rpass=govintercept -mllvm -gov-list=$inst.sites" "$link"
	irc=$?
	exec 9>&-
	[ $prc -eq 0 ] && [ $irc -eq 0 ]
}

for f in "$plugin" "$lib/libgovrt.so" "$top/build/lib/govintercept.so"; do
	[ -e "$f" ] || { echo "Bail out! $f is missing: run make"; exit 1; }
done
if [ "$mode" = prepare ]; then
	prepare
	rc=$?
	[ $rc -eq 77 ] && echo "$0: bzip2's source cannot be fetched (see $cache.clang-prepare.log)" >&2
	[ $rc -eq 1 ] && echo "$0: a bzip2 build failed: see $plain.log, $inst.log, $cache.clang-prepare.log" >&2
	exit $rc
fi

tmp=$(mktemp -d /tmp/clang-bzip2.XXXXXX)
. "$top/tests/tap.sh"
agent=""
cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
has() { grep -qF -- "$1" "$2"; }

t0=$(date +%s)
prepare
rc=$?
if [ $rc -eq 77 ]; then
	echo "ok 1 # skip bzip2's Debian source cannot be fetched: $(tail -1 "$cache.clang-prepare.log")"
	echo "1..1"
	exit 0
fi
echo "# source and builds ready in $(($(date +%s) - t0)) s"

tail -20 "$plain.log" >"$tmp/err"
[ -x "$plain/bzip2" ] && [ -f "$plain/libbz2.so.1.0" ]
ok $? "bzip2 and libbz2.so build plain with clang"
tail -20 "$inst.log" >"$tmp/err"
[ -x "$inst/bzip2" ] && [ -f "$inst/libbz2.so.1.0" ] && [ -x "$inst/bzip2recover" ]
ok $? "bzip2, libbz2.so and bzip2recover build with clang and govintercept-llvm.so"
if [ $fails -ne 0 ]; then
	echo "1..$n"
	exit 1
fi
grep -E 'warning: govintercept' "$inst.log" | sed 's/.*govintercept: //' | sort -u >"$tmp/warn"
grep -v "^call to 'fprintf' at [a-z0-9]*\.c:[0-9]* is not instrumented: it passes more arguments than a site holds" \
	"$tmp/warn" >"$tmp/err"
[ ! -s "$tmp/err" ] && [ -s "$tmp/warn" ]
ok $? "warnings only at the fprintfs with more than six arguments, as with gcc ($(wc -l <"$tmp/warn"))"

sort -u "$inst.sites" >"$tmp/sites"
sort -u "$gccinst.sites" >"$tmp/gsites"
nsites=$(wc -l <"$tmp/sites")
echo "# sites: clang $nsites, gcc $(wc -l <"$tmp/gsites")"
comm -23 "$tmp/gsites" "$tmp/sites" >"$tmp/err"
[ ! -s "$tmp/err" ]
ok $? "every site of the GCC plugin's build is a site here: same id, caller, callee, file:line"
# GCC folds some libc calls into builtins before its plugin's pass sees them
# (fprintf with a constant format -> __builtin_fwrite, strcat and strcmp
# with constant strings): clang keeps them as calls, so they are sites here
comm -13 "$tmp/gsites" "$tmp/sites" >"$tmp/extra"
awk '$4 != "fprintf" && $4 != "strcat" && $4 != "strcmp"' "$tmp/extra" >"$tmp/err"
echo "# $(wc -l <"$tmp/extra") more sites than gcc's: calls GCC folds (fprintf, strcat, strcmp)"
[ ! -s "$tmp/err" ]
ok $? "the extra sites are only the calls GCC folds into builtins (clang-plugin/README.md)"
nexe=$(objdump -h "$inst/bzip2" | awk '$2 == "gov_sites" { print "0x" $3 }')
[ $((${nexe:-0})) -gt 0 ] && [ $((${nexe:-0} % 64)) -eq 0 ]
ok $? "bzip2 carries a gov_sites table of 64-byte records ($((${nexe:-0} / 64)))"

make -C "$inst" test CC=clang CFLAGS="$bzflags $cgp -Rpass=govintercept" LDFLAGS="-Wl,-rpath,$inst $link" \
	>"$tmp/err" 2>&1
rc=$?
[ $rc -eq 0 ] && has "cmp sample3.tst sample3.ref" "$tmp/err" && has "like you're in business" "$tmp/err"
ok $? "bzip2's own make test passes with the clang-instrumented build"

awk 'BEGIN { s = 12345; for (i = 0; i < 60000; i++) { s = (s * 1103515245 + 12345) % 2147483648;
	printf "%d word%d %s\n", i, s % 977, (s % 3 ? "alpha" : "omega") } }' >"$tmp/data"
size=$(wc -c <"$tmp/data")
"$plain/bzip2" -c "$tmp/data" >"$tmp/plain.bz2" 2>"$tmp/err" &&
	"$inst/bzip2" -c "$tmp/data" >"$tmp/inst.bz2" 2>>"$tmp/err" &&
	cmp "$tmp/plain.bz2" "$tmp/inst.bz2" >>"$tmp/err" 2>&1 &&
	"$gccinst/bzip2" -c "$tmp/data" | cmp -s - "$tmp/plain.bz2"
ok $? "no agent: the same compressed bytes as clang's plain build and gcc's instrumented one ($size bytes)"
"$inst/bzip2" -dc "$tmp/inst.bz2" | cmp -s - "$tmp/data"
ok $? "no agent: round trip"

mkdir "$tmp/run"
export GOV_RUN_DIR="$tmp/run"
start_agent() { # RULES
	rm -f "$tmp/run/bz.sock"
	"$govagent" --resource bz --rules "$1" 2>>"$tmp/agent.log" &
	agent=$!
	w=0
	while [ ! -S "$tmp/run/bz.sock" ] && [ $w -lt 300 ]; do sleep 0.01; w=$((w + 1)); done
}
stop_agent() {
	kill "$agent" 2>/dev/null
	wait "$agent" 2>/dev/null
	agent=""
}
printf 'verdicts:\n  - function: fread\n    action: trace\n  - function: fwrite\n    action: trace\n' >"$tmp/trace.yaml"
start_agent "$tmp/trace.yaml"
GOV_RESOURCE=bz "$inst/bzip2" -c "$tmp/data" >"$tmp/trace.bz2" 2>"$tmp/err"
rc=$?
"$govagent" --stats bz >"$tmp/stats" 2>>"$tmp/err"
stop_agent
cat "$tmp/stats" >>"$tmp/err"
[ $rc -eq 0 ] && cmp -s "$tmp/trace.bz2" "$tmp/plain.bz2" && has '"to":"fread","calls":' "$tmp/stats" &&
	has '"to":"fwrite","calls":' "$tmp/stats"
ok $? "trace fread/fwrite: same bytes, the agent counts the calls"
printf 'verdicts:\n  - syscall: unlink\n    action: deny\n    errno: EACCES\n  - syscall: unlinkat\n    action: deny\n    errno: EACCES\n' >"$tmp/deny.yaml"
start_agent "$tmp/deny.yaml"
cp "$tmp/data" "$tmp/f2"
GOV_RESOURCE=bz "$inst/bzip2" "$tmp/f2" 2>"$tmp/err"
rc=$?
stop_agent
[ $rc -ne 0 ] && [ -f "$tmp/f2" ] && has "Permission denied" "$tmp/err" && cmp -s "$tmp/f2.bz2" "$tmp/plain.bz2"
ok $? "deny unlink: the input stays, bzip2 reports it, the output is complete"
echo "# total: $(($(date +%s) - t0)) s"
finish
