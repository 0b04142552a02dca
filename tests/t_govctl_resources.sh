#!/bin/sh
# tests/t_govctl_resources.sh - govctl register/resources/show/unregister/matrix
# against a private store: the paper's example (vim, telnet, file-system,
# net-driver, ram, nic), every refusal (and that it writes nothing), site
# tables read from PIE, non-PIE, shared and relocatable ELF files, damaged
# files, --json output, racing writers, and export lists (register
# --exports-file, govctl exports, bad lists refused at file:line:col). TAP
# output for prove.
#   GOVCTL=path  test another govctl binary (default: build/bin/govctl)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
govctl=${GOVCTL:-$top/build/bin/govctl}
tmp=$(mktemp -d /tmp/govctlres.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export GOV_STORE="sqlite:$tmp/store.db"
. "$top/tests/tap.sh"
# run CMD...: its stdout in $tmp/out, stderr in $tmp/err, exit code in $rc
g() { run "$govctl" "$@"; }
is_json() { python3 -c 'import json,sys; json.load(sys.stdin)' <"$1" 2>/dev/null; }
# a python expression over the JSON on stdout (as j) must be true
json_true() { python3 -c "import json,sys; j=json.load(sys.stdin); sys.exit(0 if ($1) else 1)" <"$tmp/out"; }
# the store's revision, as govctl init reports it (init writes nothing twice)
revision() { "$govctl" init 2>/dev/null | sed -n 's/.* at revision \([0-9]*\).*/\1/p'; }
snapshot() { "$govctl" resources --json >"$tmp/$1" 2>/dev/null && revision >>"$tmp/$1"; }
unchanged() { snapshot after && cmp -s "$tmp/$1" "$tmp/after"; }

if [ ! -x "$govctl" ]; then
	echo "Bail out! $govctl is missing: run make (or set GOVCTL)"
	exit 1
fi

# ---- the paper's example ----------------------------------------------------
g init; ok $rc "govctl init creates the private store"
for r in ram nic; do
	g register $r --type hardware; ok $rc "register $r (hardware)"
done
g register file-system --type service --exports fs_read,fs_write
ok $rc "register file-system (service) exporting fs_read, fs_write"
g register vim --type application --ref file-system; ok $rc "vim -> file-system is accepted"
g register telnet --type application; ok $rc "register telnet (application)"
g matrix --csv
cp "$tmp/out" "$tmp/m.csv"
[ "$(head -1 "$tmp/m.csv")" = ",telnet,vim,file-system,nic,ram" ]
ok $? "matrix --csv has a header row of the names, in layer order, then name order"
python3 - "$tmp/m.csv" >"$tmp/ones" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head = rows[0]
for r in rows[1:]:
    for name, v in zip(head[1:], r[1:]):
        if v == "1":
            print(r[0], name)
PY
[ "$(cat "$tmp/ones")" = "vim file-system" ]
ok $? "the matrix has exactly one 1, at (vim, file-system)"
[ "$(sed -n '2,$p' "$tmp/m.csv" | cut -d, -f1 | tr '\n' ' ')" = "telnet vim file-system nic ram " ]
ok $? "and so are the rows"

snapshot before
g register net-driver --type driver --ref file-system
[ $rc -eq 2 ]; ok $? "net-driver -> file-system is refused with exit 2"
grep -q 'net-driver (driver) -> file-system (service): a driver may call only hardware' "$tmp/err"
ok $? "the refusal names the edge and the rule it breaks"
grep -q 'layer set: application -> service -> driver -> hardware' "$tmp/err"
ok $? "and the layer set"
unchanged before; ok $? "nothing was written (same resources, same store revision)"
g show net-driver; [ $rc -eq 3 ]; ok $? "net-driver is not registered"
g register net-driver --type driver --ref nic --privilege kernel
ok $rc "net-driver -> nic is accepted"
g matrix
grep -q '^A = {telnet, vim}$' "$tmp/out" && grep -q '^S = {file-system}$' "$tmp/out" &&
	grep -q '^D = {net-driver}$' "$tmp/out" && grep -q '^H = {nic, ram}$' "$tmp/out"
ok $? "matrix prints A = {telnet, vim}, S = {file-system}, D = {net-driver}, H = {nic, ram}"

# ---- refusals and bad input ---------------------------------------------------
snapshot before
g register bad --type driver --ref file-system,vim,nic
[ $rc -eq 2 ] && [ "$(grep -c refused "$tmp/err")" -eq 2 ] &&
	grep -q 'bad (driver) -> file-system (service)' "$tmp/err" &&
	grep -q 'bad (driver) -> vim (application)' "$tmp/err"
ok $? "a refusal names every offending edge, one line each"
g register bad --type application --ref file-system,ghost
[ $rc -eq 2 ] && grep -q "unknown reference 'ghost'" "$tmp/err"
ok $? "an unknown reference is refused and named (exit 2)"
g register bad --type firmware
[ $rc -eq 2 ] && grep -q "unknown type 'firmware'" "$tmp/err"
ok $? "an unknown type is refused (exit 2)"
for name in .hidden 'a/b' '' "$(printf '%064d' 0)" 'sp ace'; do
	g register "$name" --type hardware
	[ $rc -eq 2 ] && grep -q 'not a valid resource name' "$tmp/err"
	ok $? "bad name '$name' is refused (exit 2)"
done
g register x --type hardware --privilege root; [ $rc -eq 2 ]
ok $? "a privilege other than user or kernel is refused"
g register x --type service --exports 'fs_read,,x'; [ $rc -eq 2 ]
ok $? "an empty export name is refused"
g register vim --type application
[ $rc -eq 2 ] && grep -q 'already registered' "$tmp/err" && grep -q -- '--replace' "$tmp/err"
ok $? "re-registering vim without --replace is refused and points to --replace"
g register vim --type application --ref vim --replace
[ $rc -eq 2 ] && grep -q 'cannot reference itself' "$tmp/err"
ok $? "a resource referencing itself is refused"
g register file-system --type driver --replace
[ $rc -eq 2 ] && grep -q 'vim (application) -> file-system (driver)' "$tmp/err"
ok $? "--replace re-checks the edges of the resources that call it"
unchanged before; ok $? "no refusal wrote anything"
g register telnet --type application --ref file-system --replace
ok $rc "--replace with allowed edges replaces"
g show telnet --json
json_true 'j["refs"] == ["file-system"]'; ok $? "and the record is replaced"

g unregister file-system
[ $rc -eq 2 ] && grep -q 'referenced by telnet, vim' "$tmp/err"
ok $? "unregister of a referenced resource is refused, naming the referrers"
g show file-system; ok $rc "and file-system is still there"
g register tmpdev --type hardware && g register tmpdrv --type driver --ref tmpdev,nic
g unregister tmpdev --force
ok $rc "unregister --force removes a referenced resource"
g show tmpdrv --json
json_true 'j["refs"] == ["nic"]'; ok $? "and takes it out of its referrers' references"
g unregister tmpdrv; ok $rc "unregister of an unreferenced resource"
g show tmpdrv; [ $rc -eq 3 ]; ok $? "it is gone"
g show nosuch; [ $rc -eq 3 ] && grep -q "no resource 'nosuch'" "$tmp/err"
ok $? "show of an unknown resource exits 3"
g unregister nosuch; [ $rc -eq 3 ]; ok $? "unregister of an unknown resource exits 3"
for c in "register x --type hardware --bogus" "resources --bogus" "show vim --bogus" \
	"unregister vim --bogus" "matrix --bogus" "register" "register x" "show" \
	"unregister" "show a b" "matrix --csv --json"; do
	# shellcheck disable=SC2086
	g $c
	[ $rc -eq 1 ] && grep -q '^usage: govctl' "$tmp/err"
	ok $? "govctl $c: exit 1 with the usage on stderr"
done
for c in register resources show unregister matrix; do
	g $c --help
	[ $rc -eq 0 ] && grep -q '^usage: govctl '"$c" "$tmp/out" && grep -q '^example' "$tmp/out"
	ok $? "govctl $c --help prints the usage and an example"
	g $c -h; [ $rc -eq 0 ]; ok $? "govctl $c -h too"
done

# ---- site tables read from binaries --------------------------------------------
lib=$top/build/lib
[ -e "$lib/libgovrt.so" ] || make -s -C "$top" all >"$tmp/make.log" 2>&1
cat >"$tmp/editor.c" <<'C'
#include <gov/govrt.h>
#include <sys/syscall.h>
long fs_read(void *buf, size_t len);
int cursor_blink(int on);
int main(void)
{
	char b[16];
	long r = GOV_CALL("lpz", fs_read, b, sizeof b);
	r += GOV_CALL("ii", cursor_blink, 1);
	return (int)(r + GOV_SYSCALL(SYS_getppid));
}
C
cat >"$tmp/fs.c" <<'C'
#include <stddef.h>
long fs_read(void *buf, size_t len) { (void)buf; return (long)len; }
int cursor_blink(int on) { return on; }
C
cc -I"$top/include" -o "$tmp/editor-pie" "$tmp/editor.c" "$tmp/fs.c" -L"$lib" -lgovrt 2>"$tmp/err"
ok $? "a program with GOV_CALL sites builds as PIE against libgovrt.so"
cc -I"$top/include" -no-pie -o "$tmp/editor-nopie" "$tmp/editor.c" "$tmp/fs.c" -L"$lib" -lgovrt 2>"$tmp/err"
ok $? "and with -no-pie"
cc -I"$top/include" -fPIC -shared -o "$tmp/libeditor.so" "$tmp/editor.c" 2>"$tmp/err"
ok $? "and as a shared object"
cc -I"$top/include" -c -o "$tmp/editor.o" "$tmp/editor.c" 2>"$tmp/err"
ok $? "and as a relocatable object"
if command -v readelf >/dev/null; then
	readelf -h "$tmp/editor-pie" | grep -q 'DYN' && readelf -h "$tmp/editor-nopie" | grep -q 'EXEC'
	ok $? "one is ET_DYN (PIE), the other ET_EXEC"
fi

for f in editor-pie editor-nopie libeditor.so editor.o; do
	g register "ed-$f" --type application --from-binary "$tmp/$f"
	ok $rc "register --from-binary $f"
	grep -q 'calls fs_read -> file-system' "$tmp/out"
	ok $? "it prints the site that gave the reference ($f)"
	grep -q "editor.c:8 in main()" "$tmp/out"
	ok $? "with its file, line and caller ($f)"
	g show "ed-$f" --json
	json_true 'j["refs"] == ["file-system"]'
	ok $? "file-system is its only reference ($f)"
done
g register file-system --type service --exports fs_read,fs_write --ref net-driver \
	--from-binary "$tmp/editor-pie" --replace
ok $rc "file-system re-registered from a binary that calls its own export"
g show file-system --json
json_true 'j["refs"] == ["net-driver"]'
ok $? "a resource never references itself through its own exports"
g register cursor --type service --exports cursor_blink --ref net-driver
g register ed2 --type application --from-binary "$tmp/editor-pie" --ref telnet
[ $rc -eq 2 ] && grep -q 'ed2 (application) -> telnet (application)' "$tmp/err" &&
	grep -q 'calls cursor_blink -> cursor' "$tmp/err"
ok $? "derived and given references are checked together; the refusal shows the sites"
g register ed3 --type application --from-binary "$tmp/editor-pie" --json
json_true 'sorted(j["resource"]["refs"]) == ["cursor", "file-system"] and len(j["derived"]) == 2'
ok $? "two exports of two resources give two references (--json lists the sites)"
g register fsdrv --type driver --from-binary "$tmp/editor-nopie"
[ $rc -eq 2 ] && grep -q 'fsdrv (driver) -> file-system (service)' "$tmp/err"
ok $? "a derived reference that breaks the hierarchy is refused"

snapshot before
printf 'not an ELF file\n' >"$tmp/text"
g register x --type application --from-binary "$tmp/text"
[ $rc -eq 2 ] && grep -q 'not an ELF file' "$tmp/err"
ok $? "a file that is not ELF: clear error, exit 2"
cc -o "$tmp/plain" -x c - <<'C'
int main(void) { return 0; }
C
g register x --type application --from-binary "$tmp/plain"
[ $rc -eq 2 ] && grep -q 'no gov_sites section' "$tmp/err"
ok $? "an ELF file without gov_sites: clear error, exit 2"
g register x --type application --from-binary "$tmp/missing"
[ $rc -eq 2 ] && grep -q "$tmp/missing: cannot open" "$tmp/err"
ok $? "a missing file: clear error, exit 2"
unchanged before; ok $? "no bad binary wrote anything"
size=$(wc -c <"$tmp/editor-pie")
bad=0
for cut in 32 64 1000 $((size / 2)) $((size - 200)); do
	head -c $cut "$tmp/editor-pie" >"$tmp/cut"
	g register x --type application --from-binary "$tmp/cut"
	{ [ $rc -eq 2 ] && [ -s "$tmp/err" ]; } || { [ $rc -eq 0 ] && "$govctl" unregister x >/dev/null; } || bad=1
done
[ $bad -eq 0 ]; ok $? "truncated copies give an error, never a crash"
python3 - "$tmp/editor-pie" "$tmp/fuzz" <<'PY'
import random, sys
data = open(sys.argv[1], "rb").read()
random.seed(7)
for i in range(40):
    b = bytearray(data)
    for _ in range(random.randint(1, 12)):
        b[random.randrange(len(b))] = random.randrange(256)
    open("%s.%d" % (sys.argv[2], i), "wb").write(b)
PY
bad=0
for f in "$tmp"/fuzz.*; do
	g register fz --type application --from-binary "$f"
	case $rc in 0) "$govctl" unregister fz >/dev/null ;; 2) ;; *) bad=1; echo "# $f: exit $rc" ;; esac
done
[ $bad -eq 0 ]; ok $? "40 damaged copies: each registers or is refused (exit 2), none crashes"

# ---- --json ------------------------------------------------------------------
for c in "resources" "show vim" "matrix" "register jx --type hardware" "unregister jx"; do
	# shellcheck disable=SC2086
	g $c --json
	[ $rc -eq 0 ] && is_json "$tmp/out"; ok $? "govctl $c --json parses"
done
g resources --json
json_true 'isinstance(j, list) and [r["name"] for r in j] == sorted(r["name"] for r in j) and all(set(r) >= {"name","type","refs","privilege","exports"} for r in j)'
ok $? "resources --json is an array of records in name order"
g show file-system --json
json_true '{"vim", "telnet", "ed-editor-pie", "ed-editor.o"} <= set(j["referenced_by"])'
ok $? "show --json lists who references it"
g matrix --json
json_true 'j["sets"]["application"][0] and len(j["matrix"]) == len(j["order"]) and all(len(r) == len(j["order"]) for r in j["matrix"]) and j["matrix"][j["order"].index("vim")][j["order"].index("file-system")] == 1'
ok $? "matrix --json has sets, order and a square matrix"

# ---- racing writers ----------------------------------------------------------
# registrations that reference hw while two unregisters of hw run: either hw
# survives with every registration, or it is gone and nothing references it
bad=0
for round in 1 2 3; do
	export GOV_STORE="sqlite:$tmp/race$round.db"
	"$govctl" register hw --type hardware >/dev/null
	for i in 1 2 3 4 5 6 7 8; do "$govctl" register "d$i" --type driver --ref hw >/dev/null 2>&1 & done
	"$govctl" unregister hw >/dev/null 2>&1 &
	"$govctl" unregister hw >/dev/null 2>&1 &
	wait
	"$govctl" resources --json >"$tmp/out" 2>/dev/null
	json_true '("hw" in [r["name"] for r in j]) or not any("hw" in r["refs"] for r in j)' || bad=1
done
[ $bad -eq 0 ]; ok $? "a racing unregister never leaves a dangling reference"
# ---- export lists: register --exports-file, govctl exports -----------------
export GOV_STORE="sqlite:$tmp/exports.db"
"$govctl" init >/dev/null
"$govctl" register nic --type hardware >/dev/null
printf '# exported by net-driver (from netdrv.h)\nnd_send\tlpz\tlong nd_send(const void *buf, size_t len)\nnd_recv   lop\n\n   # an indented comment\nnd_reset\tv\nnd_stat\t{2l{fi}3c}{id}\tstruct st nd_stat(struct q q)\n# skipped nd_big: more than 6 parameters\n' >"$tmp/ex.txt"
g register net-driver --type driver --ref nic --exports nd_old,nd_send --exports-file "$tmp/ex.txt"
ok $rc "register --exports-file with --exports"
g exports net-driver
printf '# exported by net-driver\n# untyped nd_old\nnd_send\tlpz\tlong nd_send(const void *buf, size_t len)\nnd_recv\tlop\nnd_reset\tv\nnd_stat\t{2l{fi}3c}{id}\tstruct st nd_stat(struct q q)\n' >"$tmp/want"
cmp -s "$tmp/out" "$tmp/want"; ok $? "govctl exports prints the export list (names without a signature as '# untyped NAME')"
cp "$tmp/out" "$tmp/printed.txt"
g register copy --type driver --exports-file "$tmp/printed.txt" && g exports copy
sed 1d "$tmp/out" >"$tmp/a"; sed '1,2d' "$tmp/printed.txt" >"$tmp/b"
[ $rc -eq 0 ] && cmp -s "$tmp/a" "$tmp/b"; ok $? "... and what it prints is a valid --exports-file"
g exports net-driver --json
json_true 'j["resource"] == "net-driver" and [e["name"] for e in j["exports"]] == ["nd_old","nd_send","nd_recv","nd_reset","nd_stat"] and j["exports"][0]["types"] is None and j["exports"][1] == {"name":"nd_send","types":"lpz","prototype":"long nd_send(const void *buf, size_t len)"} and "prototype" not in j["exports"][2]'
ok $? "govctl exports --json: names, types (null when unknown), prototypes"
g show net-driver --json
json_true 'j["exports"] == ["nd_old","nd_send","nd_recv","nd_reset","nd_stat"]'
ok $? "the record's exports stay a list of names (--from-binary and rule documents use them)"
g exports no-such; [ $rc -eq 3 ] && grep -q "no resource 'no-such'" "$tmp/err"
ok $? "exports of an unknown resource: exit 3, named"
g exports; [ $rc -eq 1 ]; ok $? "exports without NAME: usage error"
snapshot before
bad_list() { # CONTENT EXPECTED-MESSAGE WHAT
	printf "$1" >"$tmp/bad.txt"
	g register bad --type driver --exports-file "$tmp/bad.txt"
	[ $rc -eq 2 ] && grep -qF -- "$tmp/bad.txt:$2" "$tmp/err" && grep -q "nothing written" "$tmp/err" && unchanged before
	ok $? "a bad export list is refused with file:line:col, nothing written: $3"
}
bad_list 'ok\tlz\nnd_x\tlq\n' '2:7: not a type code of gov/types.def' "an unknown type code"
bad_list 'nd_x\n' '1:5: the type string is missing' "no types"
bad_list 'nd_x\t\n' '1:6: the type string is missing' "a TAB and no types"
bad_list '9lives i\n' '1:1: not a function name' "a name starting with a digit"
bad_list 'nd-x i\n' '1:3: expected a space or a TAB after the name' "a character no C name has"
bad_list 'nd_x ivi\n' '1:7: '"'"'v'"'"' (void) is a return type only' "void as a parameter"
bad_list 'nd_x iiiiiiii\n' '1:13: more than six parameters' "more than six parameters"
bad_list 'nd_x l{id\n' '1:10: a struct has no closing }' "a struct with no closing brace"
bad_list 'nd_x l{io}\n' '1:9: not a struct member code' "an out-buffer inside a struct"
bad_list 'nd_x {si}l\n' '1:6: a returned struct cannot hold a string or buffer' "a returned struct with a string"
bad_list 'nd_x l{sib}\n' '1:11: a b member needs a z member after it' "a buffer member with no z member"
bad_list 'nd_x l{2s}\n' '1:8: a string or buffer member (or a struct holding one) cannot be an array' "an array of strings"
bad_list 'nd_x l{}\n' '1:8: a struct needs at least one member' "an empty struct"
bad_list 'nd_x l3i\n' '1:7: a count or } outside a struct' "an array count outside a struct"
bad_list 'nd_x lc\n' '1:7: not a type code of gov/types.def' "a member-only code as a parameter"
bad_list 'nd_x ii extra words\n' '1:8: the prototype follows the types after one TAB' "a prototype after a space"
bad_list 'a i\nb i\na l\n' '3:1: listed twice' "a name listed twice"
bad_list '  nd_x i\n' '1:1: a line starts with the function name' "a line indented"
g register bad --type driver --exports-file "$tmp/no/such/file"
[ $rc -eq 2 ] && grep -q "$tmp/no/such/file: No such file or directory" "$tmp/err" && unchanged before
ok $? "an unreadable export list is refused with its path and the errno text, nothing written"
export GOV_STORE="sqlite:$tmp/race4.db"
"$govctl" register hw --type hardware >/dev/null
for i in $(seq 1 16); do "$govctl" register "d$i" --type driver --ref hw >/dev/null 2>&1 & done
wait
"$govctl" resources --json >"$tmp/out"
json_true 'len(j) == 17'; ok $? "16 registrations at once referencing one resource all succeed"

finish
