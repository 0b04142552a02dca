#!/bin/sh
# tests/t_govctl_rules.sh - govctl rule publish/list/show/history/diff/
# rollback/watch against a private store: every kind of malformed rule file
# refused with file:line and nothing written, two govctl processes
# publishing 1000 versions each at once losing none, govctl killed with
# SIGKILL in the middle of publishes leaving old-or-new and never between,
# a layer set that would break a registered edge refused, and watch from a
# revision missing nothing. TAP output for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
govctl=${GOVCTL:-$top/build/bin/govctl}
tmp=$(mktemp -d /tmp/govctlrules.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# t_etcd.sh runs this test again on an etcd store
export GOV_STORE="${RHODES_TEST_STORE_URL:-sqlite:$tmp/store.db}" GOV_RUN_DIR="$tmp/run"
race_n=${RHODES_TEST_RACE_N:-1000}
. "$top/tests/tap.sh"
g() { run "$govctl" "$@"; }
revision() { "$govctl" init 2>/dev/null | sed -n 's/.* at revision \([0-9]*\).*/\1/p'; }
has() { grep -qF -- "$1" "$tmp/$2"; }

if [ ! -x "$govctl" ]; then
	echo "Bail out! $govctl is missing: run make (or set GOVCTL)"
	exit 1
fi

g init; ok $rc "govctl init"
g register app1 --type application; ok $rc "a resource to name in rules"

# ---- every kind of malformed rule file: refused, file:line, nothing written
bad() { # bad WHAT WHERE WHY TEXT
	printf '%s' "$4" >"$tmp/bad.yaml"
	before=$(revision)
	g rule publish "$tmp/bad.yaml"
	[ $rc -eq 2 ]; ok $? "$1: exit 2"
	has "bad.yaml:$2" err && has "$3" err; ok $? "$1: says where ($2) and why"
	[ "$(revision)" = "$before" ]; ok $? "$1: nothing written"
}
bad "a syntax error" "3:" "" 'verdicts:
  - function: [x
'
bad "an unknown field" "4:5:" "unknown field 'colour'" 'verdicts:
  - function: f
    action: deny
    colour: red
'
bad "a wrong type" "4:12:" "'ten' is not an integer" 'verdicts:
  - function: f
    action: emulate
    value: ten
'
bad "an unknown resource" "4:15:" "unknown resource 'ghost'" 'verdicts:
  - function: f
    action: trace
    resource: ghost
'
bad "a cfs entry naming an unknown caller" "2:5:" "unknown resource 'ghost'" 'cfs:
  - {from: ghost, to: app1, weight: 2048}
'
bad "a cfs entry naming an unknown callee" "2:5:" "unknown resource 'nobody'" 'cfs:
  - {from: app1, to: nobody}
'
bad "a cycle in the layer set" "3:3:" "cycle in the layer set: a -> b -> a" 'layers: [a, b]
edges:
  - [a, b]
  - [b, a]
'
bad "a layer set that drops a registered resource's layer" "" "drops layer 'application' of resource app1" 'layers: [x, y]
edges:
  - [x, y]
'
g rule publish "$tmp/nonexistent.yaml"; [ $rc -eq 2 ] && has "cannot read" err; ok $? "a missing file: exit 2"
g rule publish; [ $rc -eq 1 ]; ok $? "no file: exit 1"
g rule frobnicate; [ $rc -eq 1 ]; ok $? "an unknown rule command: exit 1"
for verb in publish list show history diff rollback watch; do
	g rule "$verb" --help; [ $rc -eq 0 ] && has "example:" out; ok $? "rule $verb --help shows an example"
done

# ---- resources declared in a rule file: checked like register, written with the version
cat >"$tmp/paper.yaml" <<'Y'
name: paper
resources:
  - {name: ram, type: hardware}
  - {name: nic, type: hardware}
  - {name: net-driver, type: driver, refs: [nic], privilege: kernel}
  - {name: file-system, type: service, exports: [fs_read]}
  - {name: vim, type: application, refs: [file-system]}
  - {name: telnet, type: application}
verdicts:
  - function: fs_read
    action: trace
    resource: vim
Y
g rule publish "$tmp/paper.yaml"; ok $rc "a rule file registers the paper's resources with its version"
g matrix --csv
[ "$(tail -n +2 "$tmp/out" | cut -d, -f2- | tr ',' '\n' | grep -c '^1$')" -eq 2 ] && \
	grep -q '^vim,0,0,0,1,' "$tmp/out" && grep -q '^net-driver,0,0,0,0,0,1,' "$tmp/out"
ok $? "the matrix has their two edges (vim -> file-system, net-driver -> nic)"
g rule publish "$tmp/paper.yaml"; [ $rc -eq 0 ] && has "version 2" out; ok $? "publishing the same resources again changes none of them"
cat >"$tmp/badres.yaml" <<'Y'
name: badres
resources:
  - {name: usb, type: hardware}
  - {name: usb-driver, type: driver, refs: [usb, file-system]}
Y
before=$(revision)
g rule publish "$tmp/badres.yaml"
[ $rc -eq 2 ] && has "badres.yaml:4:5: register usb-driver refused: usb-driver (driver) -> file-system (service): a driver may call only hardware" err
ok $? "a declared resource that breaks the layer rule is refused with file:line and the rule"
[ "$(revision)" = "$before" ] && ! "$govctl" show usb >/dev/null 2>&1; ok $? "and nothing is written, not even the valid resource before it"
printf 'cfs:\n  - {from: vim, to: file-system, weight: 2048}\n  - {from: telnet, to: file-system}\n' >"$tmp/cfs.yaml"
r=$(revision)
g rule publish "$tmp/cfs.yaml"; [ $rc -eq 0 ] && has "version 1" out; ok $? "a cfs section naming registered resources is published"
g rule watch /rules/cfs/routes --from-rev $((r + 1)) --count 1; has 'PUT /rules/cfs/routes ["file-system"]' out
ok $? "... routed to the callee's agent, which dispatches under it (and to no other)"
printf 'tasklets:\n  - {name: t1, function: fs_read, resource: file-system}\n  - {name: t2, function: g}\n' >"$tmp/tl.yaml"
r=$(revision)
g rule publish "$tmp/tl.yaml"; g rule watch /rules/tl/routes --from-rev $((r + 1)) --count 1
[ $rc -eq 0 ] && has '["file-system","*"]' out
ok $? "a tasklets section is routed to its resource's agent, and to every agent for an entry naming none"
printf 'resources:\n  - {name: vim, type: service}\n' >"$tmp/clash.yaml"
g rule publish "$tmp/clash.yaml"; [ $rc -eq 2 ] && has "already registered differently" err; ok $? "a resource declared differently from its registration is refused"

# ---- bad command lines and an unusable store: clear errors, documented exit codes
run "$govctl" --store bogus:x init; [ $rc -eq 4 ] && has "bogus" err; ok $? "an unknown store scheme: exit 4, named"
run "$govctl" --store "sqlite:$tmp/no/such/dir/s.db" rule list; [ $rc -eq 4 ]; ok $? "a store that cannot be opened: exit 4"
g rule diff pol 1 x; [ $rc -eq 1 ]; ok $? "rule diff with a version that is not a number: exit 1"
g rule watch --from-rev zero; [ $rc -eq 1 ] && has "--from-rev zero" err; ok $? "rule watch --from-rev that is not a revision: exit 1"
g rule history; [ $rc -eq 1 ]; ok $? "rule history without a name: exit 1"
g agent status nosuch; [ $rc -eq 3 ]; ok $? "agent status of a resource with no agent: exit 3"
g agent stop nosuch; [ $rc -eq 3 ] && has "no agent for nosuch" err; ok $? "agent stop with no agent: exit 3"
g agent frob; [ $rc -eq 1 ]; ok $? "an unknown agent command: exit 1"
g stats --json; [ $rc -eq 0 ] && python3 -c 'import json,sys; assert json.load(sys.stdin)==[]' <"$tmp/out"; ok $? "stats with no agent running: an empty JSON list"

# ---- versions
printf 'verdicts:\n  - function: f\n    action: trace\n' >"$tmp/p1.yaml"
printf 'verdicts:\n  - function: f\n    action: deny\n    errno: EIO\n' >"$tmp/p2.yaml"
g rule publish "$tmp/p1.yaml" --name pol; [ $rc -eq 0 ] && has "version 1" out; ok $? "publish version 1"
start=$(revision)
g rule publish "$tmp/p2.yaml" --name pol; [ $rc -eq 0 ] && has "version 2" out; ok $? "publish version 2"
g rule list --json; python3 -c 'import json,sys; j={r["name"]: r["version"] for r in json.load(sys.stdin)}; assert j["pol"]==2' <"$tmp/out"; ok $? "rule list --json"
g rule history pol; [ "$(grep -c '^ *[0-9]' "$tmp/out")" -eq 2 ] && has "(current)" out; ok $? "rule history lists both, marking the current one"
g rule rollback pol --to 1; [ $rc -eq 0 ] && has "version 3" out; ok $? "rollback publishes version 1 again as 3"
g rule show pol; cmp -s "$tmp/out" "$tmp/p1.yaml"; ok $? "and version 3 is version 1's text"
g rule rollback pol --to 7; [ $rc -eq 3 ]; ok $? "rollback to a version that does not exist: exit 3"
g rule show nosuch; [ $rc -eq 3 ]; ok $? "an unknown rule: exit 3"

# ---- watch from a revision: every change since, in order, then stops at --count
g rule watch /rules/pol/ --from-rev "$start" --count 4
[ $rc -eq 0 ] && head -1 "$tmp/out" | grep -q "watching /rules/pol/ from revision $start"; ok $? "watch says which revision it starts from"
revs=$(sed -n 's/^rev \([0-9]*\) .*/\1/p' "$tmp/out" | tr '\n' ' ')
[ "$(sed -n 's/^rev \([0-9]*\) .*/\1/p' "$tmp/out" | wc -l)" -eq 4 ] && \
	[ "$(sed -n 's/^rev \([0-9]*\) .*/\1/p' "$tmp/out" | sort -n | tr '\n' ' ')" = "$revs" ]
ok $? "and prints the changes since, in revision order ($revs)"
( sleep 0.3; "$govctl" rule publish "$tmp/p2.yaml" --name pol >/dev/null ) &
g rule watch /rules/pol/ --count 2
wait
has "PUT /rules/pol/current 4" out; ok $? "a live watch sees a publish as it happens"

# ---- two govctl publishers, 1000 versions each, at the same time: none lost
printf 'verdicts:\n  - function: g\n    action: trace\n' >"$tmp/c.yaml"
publisher() { i=0; while [ $i -lt "$race_n" ]; do "$govctl" rule publish "$tmp/c.yaml" --name race >/dev/null 2>>"$tmp/race.err" || echo fail >>"$tmp/race.fail"; i=$((i + 1)); done; }
publisher & p1=$!
publisher & p2=$!
wait $p1 $p2
[ ! -s "$tmp/race.fail" ]; ok $? "2 x $race_n concurrent publishes all succeed"
g rule history race --json
python3 -c 'import json,sys; j=json.load(sys.stdin); v=[x["version"] for x in j]; assert v==list(range(1,2*int(sys.argv[1])+1)), (len(v), v[-3:])' "$race_n" <"$tmp/out"
ok $? "and the rule has versions 1..$((2 * race_n)), none lost or doubled"

# ---- SIGKILL in the middle of publishes: old or new, never between
python3 - "$tmp/big.yaml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("verdicts:\n")
    for i in range(20000):
        f.write("  - function: fn%d\n    action: deny\n    errno: EACCES\n" % i)
PY
torn=0
for i in 1 2 3 4 5 6 7 8; do
	"$govctl" rule publish "$tmp/big.yaml" --name big >/dev/null 2>&1 &
	pid=$!
	sleep "0.0$((i * 7 % 10))$i"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	"$govctl" rule history big --json >"$tmp/h.json" 2>/dev/null
	"$govctl" rule list --json >"$tmp/l.json" 2>/dev/null
	python3 - "$tmp/h.json" "$tmp/l.json" <<'PY' || torn=$((torn + 1))
import json, sys
try:
    hist = json.load(open(sys.argv[1]))
except ValueError:
    hist = []          # no version yet: the rule does not exist
rules = {r["name"]: r["version"] for r in json.load(open(sys.argv[2]))}
versions = [h["version"] for h in hist]
cur = rules.get("big", 0)
# every version that exists is the current one or older, and current exists
assert versions == list(range(1, cur + 1)), (versions, cur)
PY
done
[ $torn -eq 0 ]; ok $? "8 publishes killed at random moments: always the old or the new version"

finish
