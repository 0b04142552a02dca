#!/bin/sh
# tests/t_install.sh - make install into a DESTDIR, then build and run a
# governed program against the installed tree through pkg-config, shared and
# static, with the installed govagent. TAP output for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/govinstall.XXXXXX)
trap 'kill $agent 2>/dev/null; rm -rf "$tmp"' EXIT
agent=""
. "$top/tests/tap.sh"

make -s -C "$top" install PREFIX=/opt/rhodes DESTDIR="$tmp/root" >"$tmp/log" 2>&1
ok $? "make install PREFIX=/opt/rhodes DESTDIR=... succeeds"
root="$tmp/root/opt/rhodes"
for f in bin/govagent lib/libgovrt.so.1 lib/libgovrt.so lib/libgovrt.a include/gov/govrt.h \
	include/gov/abi.h include/gov/types.def lib/pkgconfig/govrt.pc; do
	[ -e "$root/$f" ]; ok $? "installs $f"
done
grep -q '^prefix=/opt/rhodes$' "$root/lib/pkgconfig/govrt.pc"; ok $? "govrt.pc names the prefix"

cat > "$tmp/p.c" <<'C'
#define GOV_RESOURCE_NAME "inst"
#include <gov/govrt.h>
#include <stdio.h>
__attribute__((noinline)) long twice(long x) { return 2 * x; }
int main(void) { printf("%ld\n", GOV_CALL("ll", twice, 21L)); return 0; }
C
# pkg-config's paths point at the final prefix; rewrite them to the DESTDIR copy
export PKG_CONFIG_PATH="$root/lib/pkgconfig"
flags=$(pkg-config --define-variable=prefix="$root" --cflags --libs govrt)
ok $? "pkg-config --cflags --libs govrt"
# shellcheck disable=SC2086
cc -o "$tmp/p" "$tmp/p.c" $flags -Wl,-rpath,"$root/lib" 2>"$tmp/cc.log"
ok $? "a program builds against the installed headers and libgovrt.so"
# shellcheck disable=SC2086
cc -o "$tmp/ps" "$tmp/p.c" -I"$root/include" "$root/lib/libgovrt.a" -lpthread 2>>"$tmp/cc.log"
ok $? "and against libgovrt.a"
[ "$("$tmp/p")" = 42 ]; ok $? "it runs natively with no agent"

mkdir -p "$tmp/run"
printf 'verdicts:\n  - function: twice\n    action: emulate\n    value: 7\n' > "$tmp/r.yaml"
GOV_RUN_DIR="$tmp/run" "$root/bin/govagent" --resource inst --rules "$tmp/r.yaml" 2>"$tmp/agent.log" &
agent=$!
i=0; while [ ! -S "$tmp/run/inst.sock" ] && [ $i -lt 200 ]; do sleep 0.01; i=$((i + 1)); done
[ "$(GOV_RUN_DIR="$tmp/run" "$tmp/p")" = 7 ]; ok $? "under the installed govagent, a rule applies (shared)"
[ "$(GOV_RUN_DIR="$tmp/run" "$tmp/ps")" = 7 ]; ok $? "and to the static build"
finish
