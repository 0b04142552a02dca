#!/bin/sh
# tests/t_xcall_store.sh - cross-resource calls configured through govctl
# and the rule store, the way a user sets them up: resources registered
# with their exports, a forward rule that names no callee (the agent finds
# the resource exporting the function), agents started by govctl, the
# edge's protocol switched by publishing a new version, and a bad rule
# refused by govctl with nothing written. A Python caller (rhodes.Client)
# calls a C service. TAP output for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
govctl=$top/build/bin/govctl
peer=$top/build/tests/xcall_peer
tmp=$(mktemp -d /tmp/govxs.XXXXXX)
export GOV_RUN_DIR=$tmp/run GOV_STORE=sqlite:$tmp/store.db
export RHODES_LIBGOVRT=$top/build/lib/libgovrt.so.1
export PATH="$top/build/bin:$PATH"
server=""
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null
	for r in c-svc py-app; do "$govctl" agent stop $r >/dev/null 2>&1; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/tests/tap.sh"
if [ ! -x "$govctl" ] || [ ! -x "$peer" ]; then
	echo "Bail out! build first: make all tests"
	exit 1
fi
g() { run "$govctl" "$@"; }
wait_log() { # wait_log NAME TEXT [COUNT]
	i=0
	while [ "$(grep -c "$2" "$GOV_RUN_DIR/$1.log" 2>/dev/null)" -lt "${3:-1}" ] && [ $i -lt 500 ]; do
		sleep 0.01; i=$((i + 1))
	done
	[ "$(grep -c "$2" "$GOV_RUN_DIR/$1.log" 2>/dev/null)" -ge "${3:-1}" ]
}
pycall() { run env GOV_RESOURCE=py-app python3 "$top/tests/xcall/pycall.py" "$top/python"; }

g init; ok $rc "a private store"
g register c-svc --type service --exports-file "$top/tests/xcall/c-svc.exports"
ok $rc "c-svc registered with its exports"
g register py-app --type application --ref c-svc; ok $rc "py-app registered, calling c-svc"
cat >"$tmp/fwd.yaml" <<'YAML'
name: fwd
verdicts:           # no 'to:': the agent finds who exports each function
  - {function: c_mul, action: forward, resource: py-app}
  - {function: c_scale, action: forward, resource: py-app}
  - {function: c_upper, action: forward, resource: py-app}
  - {function: c_bsum, action: forward, resource: py-app}
  - {function: c_err, action: forward, resource: py-app}
  - {function: c_pt, action: forward, resource: py-app}
  - {function: c_tri, action: forward, resource: py-app}
  - {function: c_rec, action: forward, resource: py-app}
  - {function: c_doc, action: forward, resource: py-app}
protocols:
  - {from: py-app, to: c-svc, protocol: msgqueue}
YAML
g rule publish "$tmp/fwd.yaml"; ok $rc "the forward rule is published"
g agent start c-svc --edge-tcp 127.0.0.1:0; ok $rc "c-svc's agent started by govctl, also on tcp"
g agent start py-app; ok $rc "py-app's agent started by govctl"
GOV_RESOURCE=c-svc GOV_EXPORTS=$top/tests/xcall/c-svc.exports "$peer" serve 2>"$tmp/serve.err" &
server=$!
wait_log c-svc "event=server_connected resource=c-svc"; ok $? "the C service serves c-svc's exports"

pycall
ok $rc "Python calls the C service through store-configured agents"
grep -qx "c_mul=42" "$tmp/out" && grep -qx "c_upper=6 RHODES" "$tmp/out" && grep -qx "c_err=-1 errno=ENOENT" "$tmp/out" &&
	grep -qx "c_pt=21 3.750" "$tmp/out" && grep -qx "c_tri=83.0" "$tmp/out" &&
	grep -qx "c_rec=4454" "$tmp/out" && grep -qx "c_doc=6995470" "$tmp/out"
ok $? "with the right answers (callee found from the registered exports)"
"$top/build/bin/govagent" --stats py-app >"$tmp/stats.json"
grep -q '"protocol":"msgqueue"' "$tmp/stats.json"; ok $? "on the published protocol, msgqueue"

for proto in shm tcp unix; do
	sed -i "s/protocol: [a-z]*}/protocol: $proto}/" "$tmp/fwd.yaml"
	applied=$(grep -c "event=rules_applied" "$GOV_RUN_DIR/py-app.log")
	g rule publish "$tmp/fwd.yaml"; ok $rc "publish protocol $proto"
	wait_log py-app "event=rules_applied" $((applied + 1))
	ok $? "$proto: py-app's agent applied it"
	pycall
	grep -qx "c_mul=42" "$tmp/out"; ok $? "$proto: the calls still arrive"
	"$top/build/bin/govagent" --stats py-app >"$tmp/stats.json"
	grep -q "\"protocol\":\"$proto\"" "$tmp/stats.json"; ok $? "$proto: the edge now runs on $proto"
done
# govctl stats: the edge's line carries every forwarded call, the direct
# ones (shm) included, as py-app's agent counts them
"$top/build/bin/govagent" --stats py-app >"$tmp/stats.json"
want=$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["xcall"]["edges"][0]
print(e["to"], e["protocol"], e["calls"], e["direct"], e["ok"])' "$tmp/stats.json")
g stats
got=$(awk '$1 == "py-app" && $2 == "c-svc" && NF == 8 { print $2, $3, $4, $5, $6 }' "$tmp/out")
[ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ] && [ "${want#* * }" != "0 0 0" ]
ok $? "govctl stats shows the edge with all its calls, direct ones included ($got)"
switches=$(grep -c "event=edge_switched" "$GOV_RUN_DIR/py-app.log")
[ "$switches" -ge 3 ]; ok $? "py-app's agent logged each switch ($switches)"
grep -q "event=edge_switched from=py-app to=c-svc protocol=unix old=tcp at=" "$GOV_RUN_DIR/py-app.log"
ok $? "with the protocols and the time"

# bad rules through govctl: refused with file:line, nothing written
printf 'name: fwd\nverdicts:\n  - {function: c_mul, action: deny, to: c-svc}\n' >"$tmp/bad.yaml"
g rule publish "$tmp/bad.yaml"
[ $rc -ne 0 ] && grep -q "bad.yaml:3:.*'to' only goes with action forward" "$tmp/err"
ok $? "a 'to' on a deny is refused with file:line"
printf 'name: fwd\nprotocols:\n  - {from: py-app, to: c-svc, protocol: carrier-pigeon}\n' >"$tmp/bad.yaml"
g rule publish "$tmp/bad.yaml"
[ $rc -ne 0 ] && grep -q "unknown protocol 'carrier-pigeon'" "$tmp/err"
ok $? "an unknown protocol is refused"
g rule show fwd
grep -q "protocol: unix" "$tmp/out"; ok $? "and the rule in force is unchanged"
finish
