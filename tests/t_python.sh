#!/bin/sh
# tests/t_python.sh - the Python package (python/rhodes) on real agents:
# a C program calls a Python service's functions, and a Python program
# calls a C service's, over each edge protocol (unix, tcp, msgqueue, shm),
# with every argument type, errno, and a Python exception; then bad export
# lists refused by the Python server. TAP output for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
agent=$top/build/bin/govagent
peer=$top/build/tests/xcall_peer
tmp=$(mktemp -d /tmp/govpy.XXXXXX)
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
}
# wait_log NAME TEXT: until the agent's log has TEXT (5 s at most)
wait_log() {
	i=0
	while ! grep -q "$2" "$tmp/$1.log" 2>/dev/null && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
	grep -q "$2" "$tmp/$1.log" 2>/dev/null
}
rules() { # rules FROM TO PROTO FUNCTIONS...
	from=$1 to=$2 proto=$3; shift 3
	{
		echo "verdicts:"
		for f in "$@"; do echo "  - {function: $f, action: forward, to: $to}"; done
		echo "protocols:"
		echo "  - {from: $from, to: $to, protocol: $proto}"
	} >"$tmp/$from.yaml"
}

start_agent py-svc --edge-tcp 127.0.0.1:0
start_agent c-svc --edge-tcp 127.0.0.1:0
GOV_RESOURCE=py-svc python3 "$top/tests/xcall/pyserve.py" "$top/python" \
	"$top/tests/xcall/py-svc.exports" >"$tmp/pyserve.out" 2>&1 &
pids="$pids $!"
wait_log py-svc "event=server_connected resource=py-svc"
ok $? "a Python process serves py-svc's exports through its agent"
GOV_RESOURCE=c-svc GOV_EXPORTS=$top/tests/xcall/c-svc.exports "$peer" serve 2>"$tmp/cserve.err" &
pids="$pids $!"
wait_log c-svc "event=server_connected resource=c-svc"
ok $? "a C process serves c-svc's exports"

for proto in unix tcp msgqueue shm; do
	rules c-app py-svc $proto py_add py_avg py_half py_greet py_len py_fail py_boom py_pt py_rec
	start_agent c-app --rules "$tmp/c-app.yaml"
	run env GOV_RESOURCE=c-app "$peer" call
	ok $rc "$proto: C calls the Python service"
	for want in py_add=42 py_avg=1.750 py_half=2.500 "py_greet=13 hello, rhodes" py_len=124716 \
		"py_fail=-1 errno=EACCES" "py_boom=-1 errno=EIO" "py_pt=21 3.750" \
		py_rec=504522 py_rec_null=-100928; do
		grep -qx "$want" "$tmp/out"
		ok $? "$proto: C -> Python: $want"
	done
	stop_agent c-app

	rules py-app c-svc $proto c_mul c_scale c_upper c_bsum c_err c_pt c_tri c_rec c_doc
	start_agent py-app --rules "$tmp/py-app.yaml"
	run env GOV_RESOURCE=py-app python3 "$top/tests/xcall/pycall.py" "$top/python"
	ok $rc "$proto: Python calls the C service"
	for want in c_mul=42 c_scale=1.500 "c_upper=6 RHODES" c_bsum=19900 "c_err=-1 errno=ENOENT" \
		"c_pt=21 3.750" c_tri=83.0 c_rec=4454 c_rec_null=-996 c_doc=6995470 \
		c_nothing=EHOSTUNREACH; do
		grep -qx "$want" "$tmp/out"
		ok $? "$proto: Python -> C: $want"
	done
	stop_agent py-app
done

# ---- the Python server's bad input ----
bad() { # bad WHAT EXPORTS-TEXT EXPECTED
	printf "$2" >"$tmp/bad.exports"
	run env GOV_RESOURCE=py-x python3 -c "
import sys; sys.path.insert(0, '$top/python'); import rhodes
def f(a): return a
rhodes.Server().load_exports('$tmp/bad.exports', {'f': f})"
	[ $rc -ne 0 ] && grep -q "$3" "$tmp/err"
	ok $? "Python export list: $1 is refused ($3)"
}
bad "a line of one word" 'f\n' "bad.exports:1: expected 'NAME TYPES'"
bad "an unknown type code" '# c\nf lQ\n' "bad.exports:2: export f: type string 'lQ': unknown type code"
bad "a b without z" 'f lb\n' "needs a z parameter after it"
bad "a struct with no }" 'f {id{id}i\n' "a struct has no closing }"
bad "an out-buffer in a struct" 'f l{io}\n' "not a struct member code"
bad "a returned struct with a string" 'f {is}l\n' "a returned struct cannot hold a string"
bad "a buffer member without z" 'f l{bi}\n' "a b member needs a z member after it"
bad "an array of strings" 'f l{2s}\n' "cannot be an array"
bad "a member code outside a struct" 'f lc\n' "c and h are struct members only"
bad "a function it does not have" 'g ll\n' "bad.exports:1: g is not a function here"
bad "a name listed twice" 'f ll\nf ll\n' "bad.exports:2: export f: listed twice"
run env -u GOV_RESOURCE python3 -c "
import sys; sys.path.insert(0, '$top/python'); import rhodes; rhodes.Server()"
[ $rc -ne 0 ] && grep -q "needs a resource" "$tmp/err"
ok $? "a Python server with no resource is refused"
finish
