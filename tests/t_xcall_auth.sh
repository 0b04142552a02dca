#!/bin/sh
# tests/t_xcall_auth.sh - tcp links between agents prove a shared key
# (govagent --edge-key, runtime/agent/edge_auth.c), with real agents, a real
# serving process and a Python caller (rhodes.Client over libgovrt): the
# same key links and calls; a wrong key, a key on one side only, and a raw
# client sending garbage are refused and logged, the caller gets
# EHOSTUNREACH (not run), and the callee's agent goes on serving; bad key
# files stop an agent at start. TAP output for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
agent=$top/build/bin/govagent
peer=$top/build/tests/xcall_peer
tmp=$(mktemp -d /tmp/govauth.XXXXXX)
export GOV_RUN_DIR=$tmp
export RHODES_LIBGOVRT=$top/build/lib/libgovrt.so.1
unset GOV_STORE
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/tests/tap.sh"

if [ ! -x "$agent" ] || [ ! -x "$peer" ]; then
	echo "Bail out! build first: make all tests"
	exit 1
fi

key() { # key NAME TEXT: a key file only its owner may read
	printf '%s' "$2" >"$tmp/$1"; chmod 600 "$tmp/$1"
}
key k1 "the first shared edge key, 40 bytes long"
key k2 "another edge key, not the first one at all"

# start_agent NAME [ARGS...]: in the background, logging to $tmp/NAME.log
start_agent() {
	name=$1; shift
	"$agent" --resource "$name" "$@" 2>>"$tmp/$name.log" &
	eval "agent_$(echo "$name" | tr - _)=$!"
	pids="$pids $!"
	i=0
	while [ ! -S "$tmp/$name.edge" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
}
stop_agent() {
	eval "p=\$agent_$(echo "$1" | tr - _)"
	kill "$p" 2>/dev/null; wait "$p" 2>/dev/null
	rm -f "$tmp/$1.edge" "$tmp/$1.tcp"
}
wait_log() { # wait_log NAME TEXT: until the agent's log has TEXT (5 s at most)
	i=0
	while ! grep -q "$2" "$tmp/$1.log" 2>/dev/null && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
	grep -q "$2" "$tmp/$1.log" 2>/dev/null
}
cat >"$tmp/app.yaml" <<EOF
verdicts:
  - {function: c_mul, action: forward, to: c-svc}
protocols:
  - {from: a-app, to: c-svc, protocol: tcp}
EOF
call() { # call: c_mul(6, 7) from Python through a-app's agent; prints r errno
	run env GOV_RESOURCE=a-app python3 -c "
import errno, sys; sys.path.insert(0, '$top/python'); import rhodes
r, e = rhodes.Client().function('c_mul', 'lll')(6, 7)
print(r, errno.errorcode.get(e, e))"
}
# case WHAT SVC-KEY-ARGS APP-KEY-ARGS EXPECT [SVC-LOG-TEXT]
case_() {
	what=$1 svc_args=$2 app_args=$3 want=$4 svc_says=${5:-}
	start_agent c-svc --edge-tcp 127.0.0.1:0 $svc_args
	GOV_RESOURCE=c-svc GOV_EXPORTS=$top/tests/xcall/c-svc.exports "$peer" serve 2>>"$tmp/serve.err" &
	srv=$!
	wait_log c-svc "event=server_connected resource=c-svc pid=$srv"
	start_agent a-app --rules "$tmp/app.yaml" --forward-timeout-ms 3000 $app_args
	call
	grep -qx -- "$want" "$tmp/out"
	ok $? "$what: the call gives '$want' ($(cat "$tmp/out" "$tmp/err" | head -c 200))"
	if [ -n "$svc_says" ]; then
		wait_log c-svc "event=link_refused.*$svc_says"
		ok $? "$what: the callee's agent logs the refusal ($svc_says)"
		grep -q "event=forward_failed.*edge key" "$tmp/a-app.log"
		ok $? "$what: the caller's agent logs why ($(grep -o 'error="[^"]*edge key[^"]*"' "$tmp/a-app.log" | head -1))"
	fi
	kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null
	stop_agent a-app
	stop_agent c-svc
	: >"$tmp/c-svc.log"
	: >"$tmp/a-app.log"
}

case_ "the same key on both sides" "--edge-key $tmp/k1" "--edge-key $tmp/k1" "42 0"
case_ "no key on either side (unauthenticated, as before)" "" "" "42 0"
case_ "a wrong key" "--edge-key $tmp/k1" "--edge-key $tmp/k2" "-1 EHOSTUNREACH" "wrong key"
case_ "no key on the caller's side" "--edge-key $tmp/k1" "" "-1 EHOSTUNREACH" "has no edge key"
case_ "no key on the callee's side" "" "--edge-key $tmp/k1" "-1 EHOSTUNREACH" "has an edge key and this agent none"

# ---- a stranger who can reach the port ----
start_agent c-svc --edge-tcp 127.0.0.1:0 --edge-key "$tmp/k1"
GOV_RESOURCE=c-svc GOV_EXPORTS=$top/tests/xcall/c-svc.exports "$peer" serve 2>>"$tmp/serve.err" &
srv=$!
pids="$pids $srv"
wait_log c-svc "event=server_connected resource=c-svc pid=$srv"
run python3 - "$tmp/c-svc.tcp" <<'EOF'
import socket, struct, sys
host, port = open(sys.argv[1]).read().split()[0].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
ch = s.recv(72)
# garbage in place of the answer, then a forged HELLO-looking frame
s.sendall(b"\xde\xad\xbe\xef" * 18)
v = s.recv(72)
print("challenge=%d verdict_refused=%d" % (len(ch), len(v) == 72 and v[6] == 1))
s.close()
s = socket.create_connection((host, int(port)), timeout=5)
s.recv(72)
s.sendall(struct.pack("<IHHQQIiqBB6s64s96s", 0x58564F47, 1, 1, 0, 0, 0, 0, 0, 0, 1, b"",
                      b"mallory", b"").ljust(72, b"\0"))
v = s.recv(72)
print("hello_instead=%d" % (len(v) == 72 and v[6] == 1))
EOF
grep -qx "challenge=72 verdict_refused=1" "$tmp/out" && grep -qx "hello_instead=1" "$tmp/out"
ok $? "a raw client's garbage and a HELLO without the key are refused ($(cat "$tmp/out" "$tmp/err" | tr '\n' ' '))"
wait_log c-svc "event=link_refused.*not one (a stranger"
ok $? "the callee's agent logs the stranger's refusal"
start_agent a-app --rules "$tmp/app.yaml" --forward-timeout-ms 3000 --edge-key "$tmp/k1"
call
grep -qx "42 0" "$tmp/out"
ok $? "the callee's agent goes on serving agents with the key"
stop_agent a-app

# ---- bad key files stop an agent at start ----
bad_key() { # bad_key WHAT FILE EXPECTED
	run "$agent" --resource bad-key --edge-key "$2"
	[ $rc -ne 0 ] && grep -q -- "$3" "$tmp/err"
	ok $? "an edge key file $1 is refused at start ($3)"
}
printf 'short' >"$tmp/short"; chmod 600 "$tmp/short"
key open "an edge key that others can read, 40 bytes"; chmod 644 "$tmp/open"
bad_key "that does not exist" "$tmp/none" "$tmp/none: cannot read the edge key: No such file"
bad_key "of 5 bytes" "$tmp/short" "an edge key is 16 to 4096 bytes"
bad_key "that others may read" "$tmp/open" "may be read by others (mode 644): chmod 600 it"
finish
