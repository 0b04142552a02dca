#!/bin/sh
# tests/t_gcc_bzip2.sh - govintercept.so on real code (issue 4, item 4):
# bzip2 from Debian's source package, built plain and with every syscall
# wrapper and every call into libc instrumented, passes its own `make test`
# and writes the same bytes as the plain build; under a govagent, traced
# calls are counted and the output does not change, and a denied unlink
# keeps bzip2's input file; govctl register --from-binary reads its site
# table. TAP output for prove.
#
# The source is fetched once (`apt-get source bzip2`, adding a deb-src entry
# for the release's Debian archive to /etc/apt/sources.list.d/rhodes-src.list
# when none is configured; root needed then) into build/cache/bzip2 and
# reused. The two builds are build/cache/bzip2-plain-work and
# build/cache/bzip2-gov-work (bench/sites measures them).
#   --prepare   only fetch and build (no TAP; exit 0, or 77 when the source
#               cannot be fetched, 1 when a build fails); used by bench/sites,
#               which reuses builds newer than the plugin and libgovrt
#
# "Every call into libc" is targets-file= with every function libc.so.6
# exports (nm -D: T, W and i symbols), plus syscalls=all: each call bzip2's
# sources make to a libc function is a site (fopen, fread, fprintf, remove,
# strcmp, malloc, ...), and none of its calls to its own functions is.
# $gp and $link are lists of flags, split on purpose:
# shellcheck disable=SC2086
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
plugin=${GOVINTERCEPT:-$top/build/lib/govintercept.so}
govagent=${GOVAGENT:-$top/build/bin/govagent}
govctl=${GOVCTL:-$top/build/bin/govctl}
lib=${GOVRT_LIBDIR:-$top/build/lib}
cache=${GOV_CACHE:-$top/build/cache}
srclist=/etc/apt/sources.list.d/rhodes-src.list
mode="test"
[ "${1:-}" = "--prepare" ] && mode=prepare

export LC_ALL=C
unset GOV_RESOURCE GOV_FAIL

# ---- fetching bzip2's Debian source (once; cached in $cache/bzip2) ---------
# The deb entries of the release's main suite in /etc/apt, in either format,
# as "URI SIGNED-BY" lines ("-": no signed-by); $1 = deb or deb-src.
apt_entries() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		if [ ! -f "$f" ] || [ "$f" = "$srclist" ]; then continue; fi
		awk -v want="$codename" -v kind="$1" '
			$1 == kind {
				sb = "-"; i = 2
				if ($2 ~ /^\[/) {
					for (; i <= NF; i++) {
						if ($i ~ /signed-by=/) { sb = $i; sub(/.*signed-by=/, "", sb); sub(/\]$/, "", sb) }
						if ($i ~ /\]$/) { i++; break }
					}
				}
				if ($(i + 1) == want) print $i, sb
			}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v want="$codename" -v kind="$1" '
			function flush(  n, u, s, k, hit) {
				if (types ~ ("(^|[ \t])" kind "([ \t]|$)") && enabled != "no") {
					hit = 0; n = split(suites, s, " ")
					for (k = 1; k <= n; k++) if (s[k] == want) hit = 1
					n = split(uris, u, " ")
					for (k = 1; hit && k <= n; k++) print u[k], (sb == "" ? "-" : sb)
				}
				types = uris = suites = sb = enabled = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^[ \t]/ { next }
			{
				key = tolower($1); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
				if (key == "types:") types = val
				else if (key == "uris:") uris = val
				else if (key == "suites:") suites = val
				else if (key == "signed-by:") sb = (val ~ /^\// ? val : "")
				else if (key == "enabled:") enabled = tolower(val)
			}
			END { flush() }' "$f"
	done
}

has_source() { apt-cache showsrc bzip2 2>/dev/null | grep -q '^Package: bzip2$'; }

# 0: the source tree is $cache/bzip2/src; else 1, the reason in $why.
fetch_bzip2() {
	why=""
	[ -f "$cache/bzip2/.fetched" ] && [ -f "$cache/bzip2/src/Makefile" ] && return 0
	log=$cache/fetch.log
	: >"$log"
	export DEBIAN_FRONTEND=noninteractive
	if ! has_source; then
		if [ "$(id -u)" -ne 0 ]; then
			why="no deb-src index lists bzip2 and adding one needs root"
			return 1
		fi
		codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null | tr -d '"')
		[ -n "$codename" ] || codename=bookworm
		apt_entries deb | sort -u >"$cache/apt.deb"
		apt_entries deb-src | cut -d' ' -f1 | sort -u >"$cache/apt.deb-src"
		if [ ! -s "$cache/apt.deb" ]; then
			why="no deb entry for suite $codename in /etc/apt"
			return 1
		fi
		# a deb-src entry beside every deb URI of the suite that has none
		: >"$srclist.new"
		while read -r uri sb; do
			grep -qxF "$uri" "$cache/apt.deb-src" && continue
			if [ "$sb" = "-" ]; then
				echo "deb-src $uri $codename main" >>"$srclist.new"
			else
				echo "deb-src [signed-by=$sb] $uri $codename main" >>"$srclist.new"
			fi
		done <"$cache/apt.deb"
		if [ -s "$srclist.new" ]; then
			{ echo "# added by Rhodes' tests/t_gcc_bzip2.sh for apt-get source bzip2"
			  cat "$srclist.new"; } >"$srclist"
			rm -f "$srclist.new"
			echo "# added $srclist: $(grep -v '^#' "$srclist" | tr '\n' ' ')"
			# update the new entry's index only; the others stay as they are
			apt-get update -q -o Dir::Etc::sourcelist="$srclist" -o Dir::Etc::sourceparts=- \
				-o APT::Get::List-Cleanup=0 >>"$log" 2>&1
		else
			rm -f "$srclist.new"
			apt-get update -q >>"$log" 2>&1
		fi
		if ! has_source; then
			why="apt-get update gave no source package bzip2 (no network?)"
			return 1
		fi
	fi
	if ! command -v dpkg-source >/dev/null 2>&1; then
		if [ "$(id -u)" -ne 0 ]; then
			why="dpkg-source is missing (apt-get install dpkg-dev)"
			return 1
		fi
		echo "# installing dpkg-dev (dpkg-source)"
		apt-get install -y -q --no-install-recommends dpkg-dev >>"$log" 2>&1 ||
			{ apt-get update -q && apt-get install -y -q --no-install-recommends dpkg-dev; } >>"$log" 2>&1
		if ! command -v dpkg-source >/dev/null 2>&1; then
			why="dpkg-dev could not be installed"
			return 1
		fi
	fi
	rm -rf "$cache/bzip2.fetch"
	mkdir "$cache/bzip2.fetch" || { why="cannot create $cache/bzip2.fetch"; return 1; }
	if ! (cd "$cache/bzip2.fetch" && apt-get source -q bzip2) >>"$log" 2>&1; then
		rm -rf "$cache/bzip2.fetch"
		why="apt-get source bzip2 failed (no network?), see $log"
		return 1
	fi
	tree=$(find "$cache/bzip2.fetch" -mindepth 1 -maxdepth 1 -type d -name 'bzip2-*' | head -1)
	if [ -z "$tree" ] || [ ! -f "$tree/Makefile" ]; then
		rm -rf "$cache/bzip2.fetch"
		why="apt-get source bzip2 gave no source tree, see $log"
		return 1
	fi
	mv "$tree" "$cache/bzip2.fetch/src" &&
		(cd "$cache/bzip2.fetch" && ls -- *.dsc) >"$cache/bzip2.fetch/.fetched" &&
		rm -rf "$cache/bzip2" && mv "$cache/bzip2.fetch" "$cache/bzip2"
}

# ---- the two builds ---------------------------------------------------------
plain=$cache/bzip2-plain-work
inst=$cache/bzip2-gov-work
# bzip2's own CFLAGS (its Makefile's default)
bzflags="-Wall -Winline -O2 -g -D_FILE_OFFSET_BITS=64"
gp="-fplugin=$plugin -fplugin-arg-govintercept-syscalls=all -fplugin-arg-govintercept-targets-file=$cache/libc-functions.txt"
# the Makefile puts LDFLAGS before the objects, and Debian's gcc links with
# --as-needed: libgovrt is kept by --no-as-needed
link="-L$lib -Wl,-rpath,$lib -Wl,--no-as-needed -lgovrt -Wl,--as-needed"

# build DIR CFLAGS LDFLAGS: a fresh copy of the source, built by its Makefile
# (bzip2 links the shared libbz2 it builds: rpath to DIR, so it runs that one)
build() {
	rm -rf "$1" && cp -r "$cache/bzip2/src" "$1" &&
		make -C "$1" -j2 CC=gcc CFLAGS="$2" LDFLAGS="-Wl,-rpath,$1 $3" libbz2.a bzip2 bzip2recover \
			>"$1.log" 2>&1
}

prepare() {
	mkdir -p "$cache" || return 1
	exec 9>"$cache/bzip2.lock"
	flock 9
	f0=$(date +%s%N)
	if ! fetch_bzip2; then
		exec 9>&-
		return 77
	fi
	fetch_ms=$((($(date +%s%N) - f0) / 1000000))
	nm -D --defined-only "$(gcc -print-file-name=libc.so.6)" |
		awk '$2 ~ /^[TWi]$/ { sub(/@.*/, "", $3); print $3 }' | sort -u >"$cache/libc-functions.txt"
	if [ "$mode" = prepare ] && [ -x "$plain/bzip2" ] && [ -x "$inst/bzip2" ] &&
		[ -z "$(find "$plugin" "$lib/libgovrt.so.1" "$cache/bzip2/.fetched" -newer "$inst/bzip2")" ]; then
		exec 9>&-
		return 0
	fi
	b0=$(date +%s)
	build "$plain" "$bzflags" ""
	prc=$?
	rm -f "$inst.sites"
	build "$inst" "$bzflags $gp -fplugin-arg-govintercept-list=$inst.sites" "$link"
	irc=$?
	build_s=$(($(date +%s) - b0))
	exec 9>&-
	[ $prc -eq 0 ] && [ $irc -eq 0 ]
}

if [ "$mode" = prepare ]; then
	for f in "$plugin" "$lib/libgovrt.so"; do
		[ -e "$f" ] || { echo "$0: $f is missing: run make" >&2; exit 1; }
	done
	prepare
	rc=$?
	[ $rc -eq 77 ] && echo "$0: bzip2's source cannot be fetched: $why" >&2
	[ $rc -eq 1 ] && echo "$0: a bzip2 build failed: see $plain.log, $inst.log" >&2
	exit $rc
fi

# ---- the test ---------------------------------------------------------------
tmp=$(mktemp -d /tmp/gcc-bzip2.XXXXXX)
. "$top/tests/tap.sh"
agent=""
cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
has() { grep -qF -- "$1" "$2"; }

for f in "$plugin" "$govagent" "$govctl" "$lib/libgovrt.so"; do
	if [ ! -e "$f" ]; then
		echo "Bail out! $f is missing: run make (or set GOVINTERCEPT, GOVAGENT, GOVCTL, GOVRT_LIBDIR)"
		exit 1
	fi
done

t0=$(date +%s)
fetched=no
[ -f "$cache/bzip2/.fetched" ] || fetched=yes
prepare
rc=$?
if [ $rc -eq 77 ]; then
	echo "ok 1 # skip bzip2's Debian source cannot be fetched: $why"
	echo "1..1"
	exit 0
fi
if [ $fetched = yes ]; then
	echo "# fetched $(cat "$cache/bzip2/.fetched") into $cache/bzip2 in $fetch_ms ms"
else
	echo "# $(cat "$cache/bzip2/.fetched") from the cache, $cache/bzip2"
fi
echo "# both builds: $build_s s"

tail -20 "$plain.log" >"$tmp/err"
[ -x "$plain/bzip2" ] && [ -f "$plain/libbz2.so.1.0" ]
ok $? "bzip2 and libbz2.so build plain with their own Makefile"
tail -20 "$inst.log" >"$tmp/err"
[ -x "$inst/bzip2" ] && [ -f "$inst/libbz2.so.1.0" ] && [ -x "$inst/bzip2recover" ]
ok $? "bzip2, libbz2.so and bzip2recover build with govintercept (syscalls=all, every libc function)"
if [ $fails -ne 0 ]; then
	echo "# the rest needs both builds: stopping (logs: $plain.log, $inst.log)"
	echo "1..$n"
	exit 1
fi
# a call it cannot instrument gets a warning (the callee is named in the
# targets-file): bzip2 has printfs with more than six arguments, no other
grep -E '(warning|error|note): govintercept' "$inst.log" | sed 's/.*govintercept: //' | sort -u >"$tmp/warn"
grep -v "^call to 'fprintf' at [a-z0-9]*\.c:[0-9]* is not instrumented: it passes more arguments than a site holds" \
	"$tmp/warn" >"$tmp/err"
echo "# govintercept warnings: $(wc -l <"$tmp/warn") sites, each a fprintf with more than six arguments"
[ ! -s "$tmp/err" ] && [ -s "$tmp/warn" ]
ok $? "the instrumented build warns only at the printfs with more than six arguments (file:line)"

# the listing: one line per site and compile; libbz2's sources are compiled
# twice (.o for libbz2.a, .sho for libbz2.so), so distinct lines count sites
sort -u "$inst.sites" >"$tmp/sites"
nsites=$(wc -l <"$tmp/sites")
ncalls=$(grep -c '^[0-9a-f]* call ' "$tmp/sites")
echo "# sites: $nsites ($(cut -d' ' -f4 "$tmp/sites" | sort -u | wc -l) distinct callees)," \
	"$(grep -c ' bzip2\.c:' "$tmp/sites") in bzip2.c, $(grep -c ' bzip2recover\.c:' "$tmp/sites") in bzip2recover.c"
cp "$inst.sites" "$tmp/err"
[ "$nsites" -ge 250 ] && [ "$ncalls" -eq "$nsites" ]
ok $? "the listing counts hundreds of sites ($nsites), all calls into libc"
! grep -vqE '^[0-9a-f]{16} call [^ ]+ [^ ]+ [^ ]+\.c:[0-9]+$' "$tmp/sites" &&
	! cut -d' ' -f4 "$tmp/sites" | grep -qvxFf "$cache/libc-functions.txt"
ok $? "every site's callee is a function libc.so.6 exports"
for c in fopen fdopen fread fwrite fclose remove open close stat lstat utime fchmod fchown fprintf malloc free strcmp; do
	grep -q " call [^ ]* $c [^ ]*$" "$tmp/sites" || echo "no site calls $c"
done >"$tmp/err"
[ ! -s "$tmp/err" ]
ok $? "stdio, memory, file and syscall-wrapper calls are sites (fopen fread remove open stat utime malloc strcmp ...)"
nexe=$(objdump -h "$inst/bzip2" | awk '$2 == "gov_sites" { print "0x" $3 }')
nlib=$(objdump -h "$inst/libbz2.so.1.0" | awk '$2 == "gov_sites" { print "0x" $3 }')
nexe=$((${nexe:-0}))
nlib=$((${nlib:-0}))
echo "# gov_sites: $((nexe / 64)) records in bzip2, $((nlib / 64)) in libbz2.so.1.0"
[ "$nexe" -gt 0 ] && [ "$nlib" -gt 0 ] && [ $((nexe % 64)) -eq 0 ] && [ $((nlib % 64)) -eq 0 ]
ok $? "bzip2 and libbz2.so each carry a gov_sites table of 64-byte records"
ldd "$inst/bzip2" >"$tmp/err"
grep -q "libbz2.so.1.0 => $inst/libbz2.so.1.0" "$tmp/err" && grep -q "libgovrt.so.1 => $lib/" "$tmp/err"
ok $? "the instrumented bzip2 runs its own libbz2.so and libgovrt"

make -C "$inst" test CC=gcc CFLAGS="$bzflags $gp" LDFLAGS="-Wl,-rpath,$inst $link" >"$tmp/err" 2>&1
rc=$?
[ $rc -eq 0 ] && has "cmp sample3.tst sample3.ref" "$tmp/err" && has "like you're in business" "$tmp/err"
ok $? "bzip2's own make test passes with the instrumented build"

# a deterministic text of 4 MB: words of a fixed vocabulary, skewed choice
cat >"$tmp/gen.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
static unsigned long long s = 0x9e3779b97f4a7c15ULL;
static unsigned long long next(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
int main(int argc, char **argv)
{
	long want = atol(argv[1]), n = 0;
	static char words[4096][12];
	for (int i = 0; i < 4096; i++) {
		int len = 2 + (int)(next() % 9);
		for (int j = 0; j < len; j++) words[i][j] = (char)('a' + next() % 26);
		words[i][len] = 0;
	}
	int col = 0;
	while (n < want) {
		unsigned long long r = next();
		unsigned k = (unsigned)((r & 4095) * ((r >> 12) & 4095) >> 12);
		int w = (r >> 24) % 16 == 0 ? printf("%llu", (r >> 32) % 100000) : printf("%s", words[k]);
		n += w;
		col += w;
		if (col > 60 + (int)((r >> 40) % 20)) { putchar('\n'); col = 0; } else putchar(' ');
		n++;
	}
	return 0;
}
C
gcc -O2 "$tmp/gen.c" -o "$tmp/gen" 2>"$tmp/err" && "$tmp/gen" 4000000 >"$tmp/data" && "$tmp/gen" 4000000 | cmp -s - "$tmp/data"
ok $? "a deterministic 4 MB text to compress"
size=$(wc -c <"$tmp/data")
"$plain/bzip2" -c "$tmp/data" >"$tmp/plain.bz2" 2>"$tmp/err" &&
	"$inst/bzip2" -c "$tmp/data" >"$tmp/inst.bz2" 2>>"$tmp/err" &&
	cmp "$tmp/plain.bz2" "$tmp/inst.bz2" >>"$tmp/err" 2>&1
ok $? "no agent: the instrumented bzip2 compresses to the same bytes ($size -> $(wc -c <"$tmp/inst.bz2"))"
"$inst/bzip2" -dc "$tmp/inst.bz2" >"$tmp/inst.out" 2>"$tmp/err" && cmp -s "$tmp/inst.out" "$tmp/data" &&
	"$plain/bzip2" -dc "$tmp/inst.bz2" | cmp -s - "$tmp/data" &&
	"$inst/bzip2" -dc "$tmp/plain.bz2" | cmp -s - "$tmp/data"
ok $? "no agent: round trip, and each build decompresses the other's output"
cp "$tmp/data" "$tmp/f1" && "$inst/bzip2" -9 "$tmp/f1" 2>"$tmp/err" && [ ! -e "$tmp/f1" ] &&
	cmp -s "$tmp/f1.bz2" "$tmp/plain.bz2" && "$inst/bzip2" -t "$tmp/f1.bz2" 2>>"$tmp/err" &&
	"$inst/bzip2" -d "$tmp/f1.bz2" 2>>"$tmp/err" && cmp -s "$tmp/f1" "$tmp/data" && [ ! -e "$tmp/f1.bz2" ]
ok $? "no agent: file to file (open, utime, fchmod, remove), -t, -d: same results as bzip2 should give"

# ---- under an agent
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
cat >"$tmp/trace.yaml" <<'Y'
# every read and write bzip2 makes goes through stdio: fread and fwrite are
# the calls into libc; read/write/openat rows catch any wrapper site too
verdicts:
  - function: fread
    action: trace
  - function: fwrite
    action: trace
  - syscall: read
    action: trace
  - syscall: write
    action: trace
  - syscall: openat
    action: trace
Y
start_agent "$tmp/trace.yaml"
GOV_RESOURCE=bz "$inst/bzip2" -c "$tmp/data" >"$tmp/trace.bz2" 2>"$tmp/err" &&
	GOV_RESOURCE=bz "$inst/bzip2" -dc "$tmp/trace.bz2" >"$tmp/trace.out" 2>>"$tmp/err"
rc=$?
"$govagent" --stats bz >"$tmp/stats" 2>>"$tmp/err"
stop_agent
[ $rc -eq 0 ] && cmp -s "$tmp/trace.bz2" "$tmp/plain.bz2" && cmp -s "$tmp/trace.out" "$tmp/data"
ok $? "trace fread/fwrite/read/write: same compressed bytes and round trip under the agent"
cp "$tmp/stats" "$tmp/err"
# {"resource":"bz",...,"calls":N,...,"edges":[{"from":"bz","to":"fread","calls":N},...]}
edge() { sed -n "s/.*\"to\":\"$1\",\"calls\":\([0-9]*\).*/\1/p" "$tmp/stats"; }
set -- "$(edge fread)" "$(edge fwrite)" "$(sed -n 's/^{[^[]*"calls":\([0-9]*\),.*/\1/p' "$tmp/stats")"
set -- "${1:-0}" "${2:-0}" "${3:-0}"
echo "# govagent --stats bz: $1 fread, $2 fwrite, $3 calls in all"
# compressing reads the 4 MB in 5000-byte freads; decompressing writes it
[ "$1" -ge $((size / 5000)) ] && [ "$2" -ge $((size / 5000)) ] && [ "$3" -ge $(($1 + $2)) ]
ok $? "govagent --stats bz counts the traced calls ($1 fread, $2 fwrite)"

cat >"$tmp/deny.yaml" <<'Y'
# bzip2 deletes its input with remove(3), a wrapper of unlink in the libc
# table: the syscall rows match its site
verdicts:
  - syscall: unlink
    action: deny
    errno: EACCES
  - syscall: unlinkat
    action: deny
    errno: EACCES
Y
start_agent "$tmp/deny.yaml"
cp "$tmp/data" "$tmp/f2"
GOV_RESOURCE=bz "$inst/bzip2" "$tmp/f2" 2>"$tmp/err"
rc=$?
stop_agent
echo "# bzip2 exit $rc: $(head -3 "$tmp/err" | tr '\n' ' ')"
[ $rc -ne 0 ] && [ -f "$tmp/f2" ] && cmp -s "$tmp/f2" "$tmp/data" && has "Permission denied" "$tmp/err"
ok $? "deny unlink: bzip2's input is not deleted and bzip2 reports the failure (exit $rc)"
cmp -s "$tmp/f2.bz2" "$tmp/plain.bz2"
ok $? "deny unlink: the compressed file is complete"
rm -f "$tmp/f3" "$tmp/f3.bz2"
cp "$tmp/data" "$tmp/f3"
GOV_RESOURCE=bz "$inst/bzip2" "$tmp/f3" 2>"$tmp/err" && [ ! -e "$tmp/f3" ]
ok $? "the agent gone: the same bzip2 deletes its input again"

# ---- govctl register --from-binary
export GOV_STORE="sqlite:$tmp/store.db"
"$govctl" init >"$tmp/err" 2>&1 &&
	"$govctl" register bzip2 --type application --from-binary "$inst/bzip2" >"$tmp/reg" 2>>"$tmp/err"
rc=$?
sed 's/^/# govctl: /' "$tmp/reg" | head -5
cat "$tmp/reg" >>"$tmp/err"
[ $rc -eq 0 ] && grep -qE "(^|[^0-9])$((nexe / 64)) sites?" "$tmp/reg"
ok $? "govctl register bzip2 --from-binary: registered, reports the $((nexe / 64)) sites of bzip2's table"
"$govctl" show bzip2 >"$tmp/err" 2>&1
ok $? "govctl show bzip2"
"$govctl" register libc-files --type service --exports fopen,fdopen,fread,fwrite,fclose,remove >"$tmp/err" 2>&1 &&
	"$govctl" register bzip2-refs --type application --from-binary "$inst/bzip2" >"$tmp/reg" 2>>"$tmp/err"
rc=$?
grep 'calls' "$tmp/reg" | head -3 | sed 's/^/# govctl: /'
cat "$tmp/reg" >>"$tmp/err"
"$govctl" show bzip2-refs >"$tmp/show" 2>>"$tmp/err"
[ $rc -eq 0 ] && has "calls remove -> libc-files" "$tmp/reg" && has "calls fopen -> libc-files" "$tmp/reg" &&
	grep -qE '^references: +libc-files$' "$tmp/show"
ok $? "with a service exporting fopen, fread, remove ...: bzip2's sites reference it"

echo "# total: $(($(date +%s) - t0)) s"
finish
