#!/bin/sh
# tests/t_gcc_struct.sh - structs by value through the GCC plugin, end to
# end: tests/gcc-plugin/structs.c built with govintercept.so calls c-svc's
# exported c_pt (a struct both ways), c_tri (a 24-byte struct, passed in
# memory), c_rec and c_doc (structs with string and buffer members, one
# nested); a forward rule published through govctl sends them through the
# caller's and c-svc's real agents to tests/xcall/peer.c serving them. With
# no forward (native verdict) the plugged program prints what the unplugged
# build prints; a deny returns the zeroed temporary. The sites' type
# strings are what govexports prints for the same prototypes. The same
# program built with the clang plugin (govintercept-llvm.so, which finds
# the structs in the ABI-lowered IR call: byval pointers, eightbytes, sret)
# makes the same sites and runs the same checks (clang-O0, clang-O2). TAP
# output for prove.
# $gp is a list of flags, split on purpose:
# shellcheck disable=SC2086
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
plugin=$top/build/lib/govintercept.so
cplugin=$top/build/lib/govintercept-llvm.so
govctl=$top/build/bin/govctl
peer=$top/build/tests/xcall_peer
lib=$top/build/lib
tmp=$(mktemp -d /tmp/gcc-struct.XXXXXX)
export GOV_RUN_DIR=$tmp/run GOV_STORE=sqlite:$tmp/store.db
export PATH="$top/build/bin:$PATH" LC_ALL=C
unset GOV_RESOURCE GOV_FAIL
server=""
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null
	for r in c-svc gs-app; do "$govctl" agent stop $r >/dev/null 2>&1; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/tests/tap.sh"
for f in "$plugin" "$cplugin" "$govctl" "$peer" "$lib/libgovrt.so" "$top/build/bin/govexports"; do
	if [ ! -e "$f" ]; then
		echo "Bail out! $f is missing: run make all tests"
		exit 1
	fi
done
has() { grep -qF -- "$1" "$2"; }
src=$top/tests/gcc-plugin
gp="-fplugin=$plugin -fplugin-arg-govintercept-verify -fplugin-arg-govintercept-targets=c_pt:c_tri:mk_wide:c_rec:c_doc:mk_named:c_mix3"
wait_log() { # wait_log NAME TEXT [COUNT]
	i=0
	while [ "$(grep -c "$2" "$GOV_RUN_DIR/$1.log" 2>/dev/null)" -lt "${3:-1}" ] && [ $i -lt 500 ]; do
		sleep 0.01; i=$((i + 1))
	done
	[ "$(grep -c "$2" "$GOV_RUN_DIR/$1.log" 2>/dev/null)" -ge "${3:-1}" ]
}
mkdir -p "$GOV_RUN_DIR"
gcc -O2 -Wno-psabi -I"$src" -c "$src/structs_local.c" -o "$tmp/local.o"
run gcc -O2 -Wno-psabi -I"$src" "$src/structs.c" "$tmp/local.o" -o "$tmp/plain"
run "$tmp/plain"
cp "$tmp/out" "$tmp/plain.out"
[ $rc -eq 0 ] && grep -qx "c_pt=-21 -3.750" "$tmp/plain.out"
ok $? "the unplugged build runs structs_local.c's callees"
for O in -O0 -O2; do
	run gcc $O -I"$src" $gp -fplugin-arg-govintercept-verbose "$src/structs.c" "$tmp/local.o" \
		-o "$tmp/gov$O" -L"$lib" -Wl,-rpath,"$lib" -lgovrt
	ok $rc "$O: built with the plugin"
	cp "$tmp/err" "$tmp/notes$O"
	run clang $O -I"$src" -fpass-plugin="$cplugin" -Xclang -load -Xclang "$cplugin" \
		-Rpass=govintercept -mllvm -gov-verify -mllvm -gov-verbose \
		-mllvm -gov-targets=c_pt:c_tri:mk_wide:c_rec:c_doc:mk_named:c_mix3 \
		"$src/structs.c" "$tmp/local.o" -o "$tmp/gov-clang$O" -L"$lib" -Wl,-rpath,"$lib" -lgovrt
	ok $rc "clang$O: built with the clang plugin (IR verified)"
	cp "$tmp/err" "$tmp/cnotes$O"
done
has "main calls c_pt (types {id}{id}i)" "$tmp/notes-O2" &&
	has "main calls c_tri (types d{3l})" "$tmp/notes-O2"
ok $? "the sites' type strings are c-svc.exports' (c_pt {id}{id}i, c_tri d{3l})"
has "main calls mk_wide (types {chu{fi}4dLp}l{chu{fi}4dLp})" "$tmp/notes-O2"
ok $? "every member kind: c h u, a nested struct, double[2][2] as 4d, size_t as L, a pointer"
has "main calls c_rec (types l{sibz}l)" "$tmp/notes-O2" &&
	has "main calls c_doc (types l{c{sibz}s})" "$tmp/notes-O2"
ok $? "string and buffer members: const char * is s, a pointer before a size_t is b and z, nested too"
has "main calls mk_named (types {pL}l)" "$tmp/notes-O2"
ok $? "in a returned struct a char * stays p and a size_t L"
"$top/build/bin/govexports" "$src/structs.h" >"$tmp/exports" 2>"$tmp/err"
grep -v '^#' "$tmp/exports" | cut -f1,2 >"$tmp/want"
good=0
while IFS="$(printf '\t')" read -r name types; do
	has "main calls $name (types $types)" "$tmp/notes-O2" && good=$((good + 1))
done <"$tmp/want"
[ "$good" -eq 6 ] && [ "$(wc -l <"$tmp/want")" -eq 6 ]
ok $? "each site's type string is what govexports prints for the same prototype ($good of 6)"
good=0
for O in -O0 -O2; do
	while IFS="$(printf '\t')" read -r name types; do
		has "main calls $name (types $types)" "$tmp/cnotes$O" && good=$((good + 1))
	done <"$tmp/want"
	has "main calls mk_named (types {pL}l)" "$tmp/cnotes$O" && good=$((good + 1))
done
[ "$good" -eq 14 ]
ok $? "the clang plugin's sites have the same type strings ($good of 14)"
has "# skipped mk_named: a returned struct cannot hold a string or buffer" "$tmp/exports"
ok $? "govexports skips a function returning a struct with a string member, saying why"
gcc -O2 -Wno-psabi -I"$src" $gp -fplugin-arg-govintercept-targets=by_union:by_bits:by_packed:by_flex:by_huge \
	-c "$src/structs.c" -o "$tmp/bad.o" 2>"$tmp/err"
skipped=0
for f in by_union by_bits by_packed by_flex by_huge; do
	has "# skipped $f:" "$tmp/exports" && has "call to '$f' at" "$tmp/err" && skipped=$((skipped + 1))
done
[ "$skipped" -eq 5 ]; ok $? "the structs govexports skips, the plugin warns about ($skipped of 5)"
for O in -O0 -O2 -clang-O0 -clang-O2; do
	run "$tmp/gov$O"
	[ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/plain.out"
	ok $? "$O: with no agent (native) it prints what the unplugged build prints"
done

run "$govctl" init; ok $rc "a private store"
run "$govctl" register c-svc --type service --exports-file "$top/tests/xcall/c-svc.exports"
ok $rc "c-svc registered with its exports"
run "$govctl" register gs-app --type application --ref c-svc; ok $rc "gs-app registered, calling c-svc"
printf 'name: gs\nverdicts:\n' >"$tmp/native.yaml"
for f in c_pt c_tri mk_wide c_rec c_doc mk_named c_mix3; do
	echo "  - {function: $f, action: trace, resource: gs-app}" >>"$tmp/native.yaml"
done
run "$govctl" rule publish "$tmp/native.yaml"; ok $rc "a rule that traces every site and forwards nothing"
run "$govctl" agent start c-svc; ok $rc "c-svc's agent started"
run "$govctl" agent start gs-app; ok $rc "gs-app's agent started"
GOV_RESOURCE=c-svc GOV_EXPORTS=$top/tests/xcall/c-svc.exports "$peer" serve 2>"$tmp/serve.err" &
server=$!
wait_log c-svc "event=server_connected resource=c-svc"; ok $? "peer serves c-svc's exports"

for O in -O0 -O2 -clang-O0 -clang-O2; do
	run env GOV_RESOURCE=gs-app "$tmp/gov$O"
	[ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/plain.out"
	ok $? "$O: every site traced by its agent, then run here: the unplugged build's output"
done
cat >"$tmp/fwd.yaml" <<'YAML'
name: gs
verdicts:
  - {function: c_pt, action: forward, resource: gs-app}
  - {function: c_tri, action: forward, resource: gs-app}
  - {function: c_rec, action: forward, resource: gs-app}
  - {function: c_doc, action: forward, resource: gs-app}
  - {function: c_mix3, action: forward, resource: gs-app}
protocols:
  - {from: gs-app, to: c-svc, protocol: shm}
YAML
applied=$(grep -c "event=rules_applied" "$GOV_RUN_DIR/gs-app.log")
run "$govctl" rule publish "$tmp/fwd.yaml"; ok $rc "forward c_pt and c_tri to c-svc"
wait_log gs-app "event=rules_applied" $((applied + 1)); ok $? "gs-app's agent applied it"
for O in -O0 -O2 -clang-O0 -clang-O2; do
	run env GOV_RESOURCE=gs-app "$tmp/gov$O"
	[ $rc -eq 0 ] && grep -qx "c_pt=21 3.750" "$tmp/out" && grep -qx "c_tri=83.0" "$tmp/out" &&
		grep -qF "$(grep mk_wide "$tmp/plain.out")" "$tmp/out"
	ok $? "$O: c_pt and c_tri answered by c-svc's process (structs both ways), mk_wide native"
	grep -qx "c_rec=4454" "$tmp/out" && grep -qx "c_rec_null=-996" "$tmp/out" &&
		grep -qx "c_doc=6995470" "$tmp/out" && grep -qx "mk_named=local" "$tmp/out"
	ok $? "$O: c_rec and c_doc answered by c-svc's process, their strings and buffers carried"
	grep -qx "c_mix3=13207 b" "$tmp/out"
	ok $? "$O: c_mix3's three small register-class structs in, one out, answered by c-svc"
done
printf 'name: gs\nverdicts:\n  - {function: c_pt, action: deny, resource: gs-app}\n' >"$tmp/deny.yaml"
applied=$(grep -c "event=rules_applied" "$GOV_RUN_DIR/gs-app.log")
run "$govctl" rule publish "$tmp/deny.yaml"; ok $rc "deny c_pt"
wait_log gs-app "event=rules_applied" $((applied + 1))
for O in -O2 -clang-O0 -clang-O2; do
	run env GOV_RESOURCE=gs-app "$tmp/gov$O"
	[ $rc -eq 0 ] && grep -qx "c_pt=0 0.000" "$tmp/out" && grep -qx "c_tri=-83.0" "$tmp/out"
	ok $? "$O: a denied struct return is the site's zeroed temporary; c_tri native again"
done
finish
