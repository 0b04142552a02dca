# shellcheck shell=sh
# tests/etcd.sh - a private etcd for the tests of the store's etcd backend,
# sourced by shell tests:
#   etcd_start DIR   starts etcd with its data in DIR/etcd on free local ports
#                    and waits until it answers; sets ETCD_URL and ETCD_PID
#   etcd_stop        stops it (the caller's EXIT trap should call it)
#   etcd_restart DIR starts it again on the same ports and data
# etcd comes from Debian's etcd-server (scripts/deps.sh installs it).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

etcd_start() {
	if ! command -v etcd >/dev/null 2>&1; then
		echo "Bail out! etcd is not installed (scripts/deps.sh installs etcd-server)"
		exit 1
	fi
	client=$(free_port)
	peer=$(free_port)
	etcd_launch "$1"
}

etcd_restart() {
	etcd_launch "$1"
}

etcd_launch() {
	ETCD_URL="http://127.0.0.1:$client"
	etcd --name rhodes-test --data-dir "$1/etcd" \
		--listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
		--listen-peer-urls "http://127.0.0.1:$peer" \
		--initial-advertise-peer-urls "http://127.0.0.1:$peer" \
		--initial-cluster "rhodes-test=http://127.0.0.1:$peer" >"$1/etcd.log" 2>&1 &
	ETCD_PID=$!
	tries=0
	until python3 -c "import urllib.request,sys; sys.exit(b'true' not in urllib.request.urlopen('$ETCD_URL/health', timeout=1).read())" 2>/dev/null; do
		tries=$((tries + 1))
		if [ $tries -gt 100 ] || ! kill -0 "$ETCD_PID" 2>/dev/null; then
			echo "Bail out! etcd did not start; its log:"
			sed 's/^/# /' "$1/etcd.log" | tail -20
			exit 1
		fi
		sleep 0.1
	done
}

etcd_stop() {
	[ -n "${ETCD_PID:-}" ] && kill "$ETCD_PID" 2>/dev/null && wait "$ETCD_PID" 2>/dev/null
	ETCD_PID=
}

# tap_relay NAME CMD...: runs a TAP-printing test and reports each of its
# checks as one of ours (named "NAME: ..."), its comments passed through.
tap_relay() {
	name=$1
	shift
	"$@" >"$tmp/relay.out" 2>"$tmp/relay.err"
	status=$?
	before=$fails
	while IFS= read -r line; do
		case $line in
		"ok "*) ok 0 "$name: ${line#ok * - }" ;;
		"not ok "*) ok 1 "$name: ${line#not ok * - }" ;;
		"#"*) echo "$line" ;;
		esac
	done <"$tmp/relay.out"
	if ! grep -q '^ok \|^not ok ' "$tmp/relay.out"; then
		sed 's/^/# /' "$tmp/relay.err" | tail -20
		ok 1 "$name: reports at least one check (it reported none)"
	elif [ $status -ne 0 ] && [ $fails -eq "$before" ]; then
		sed 's/^/# /' "$tmp/relay.err" | tail -20
		ok 1 "$name: exits 0 (it exited $status)"
	fi
}
