#!/usr/bin/env bash
# The paper's example system (make demo): httpclient (application) ->
# net-service (service) -> net-driver (driver) -> nic (simulated hardware),
# each its own process and resource, built with the GCC plugin so that its
# calls to the next layer are governed sites; the rules forward each call to
# the process of the resource that exports the function (docs/xcall.md).
#   1. build with the plugin; register (one registration refused by the
#      hierarchy check); publish the forwarding rules; start four agents;
#   2. traffic; the httpclient -> net-service edge switched live from
#      msgqueue to shm while requests flow;
#   3. a deny rule published: the application's fetches are refused;
#   4. the invocation matrix and per-edge statistics.
# Everything lives in a temporary directory, removed at the end; it can run
# twice in a row.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
here="$top/examples/paper"
build="$top/build"
tmp=$(mktemp -d /tmp/rhodes-paper.XXXXXX)
export GOV_RUN_DIR="$tmp/run" GOV_HOME="$tmp/home"
export PATH="$build/bin:$PATH"
resources="nic net-driver net-service httpclient"
servers=""
cleanup() {
	for p in $servers; do kill "$p" 2>/dev/null || true; done
	for r in $resources; do govctl agent stop "$r" >/dev/null 2>&1 || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

say "building the four programs with the GCC plugin (calls to the next layer become sites)"
plugin="-fplugin=$build/lib/govintercept.so"
cc_paper() { # cc_paper OUT RESOURCE TARGETS SOURCES...
	out=$1 res=$2 targets=$3; shift 3
	cc -std=gnu11 -O2 -Wall -I"$top/include" $plugin \
		-fplugin-arg-govintercept-resource="$res" \
		${targets:+-fplugin-arg-govintercept-targets="$targets"} \
		-rdynamic "$@" "$here/common.c" -L"$build/lib" -Wl,-rpath,"$build/lib" -lgovrt -o "$tmp/$out"
	echo "  $out: resource $res${targets:+, governs calls to $targets}"
}
cc_paper httpclient httpclient 'svc_*' "$here/httpclient.c"
cc_paper service net-service 'nd_*' "$here/service.c"
cc_paper driver net-driver 'nic_*' "$here/driver.c"
cc_paper nic nic '' "$here/nic.c"

say "registering (layers: application -> service -> driver -> hardware)"
show govctl init
show govctl register nic --type hardware --exports nic_tx,nic_rx
show govctl register net-driver --type driver --privilege kernel --exports nd_send,nd_recv \
	--from-binary "$tmp/driver"
show govctl register net-service --type service --exports svc_fetch --from-binary "$tmp/service"
show govctl register httpclient --type application --from-binary "$tmp/httpclient"
say "a program that calls the driver directly is refused by the hierarchy check"
cp "$tmp/service" "$tmp/rawclient"
show govctl register rawclient --type application --from-binary "$tmp/rawclient" ||
	echo "(refused, as it should be: an application may not call a driver)"
show govctl matrix

cat >"$tmp/paper-xcall.yaml" <<'YAML'
name: paper-xcall
verdicts:          # each layer's calls run in the next layer's process
  - {function: svc_fetch, action: forward, resource: httpclient}
  - {function: nd_send, action: forward, resource: net-service}
  - {function: nd_recv, action: forward, resource: net-service}
  - {function: nic_tx, action: forward, resource: net-driver}
  - {function: nic_rx, action: forward, resource: net-driver}
protocols:
  - {from: httpclient, to: net-service, protocol: msgqueue}
  - {from: net-service, to: net-driver, protocol: unix}
  - {from: net-driver, to: nic, protocol: shm}
YAML
say "publishing the forwarding rules and starting one agent per resource"
show govctl rule publish "$tmp/paper-xcall.yaml"
for r in $resources; do show govctl agent start "$r"; done

say "starting the exporting processes: nic, net-driver, net-service"
GOV_RESOURCE=nic "$tmp/nic" "$here/nic.exports" & servers="$servers $!"
GOV_RESOURCE=net-driver "$tmp/driver" "$here/net-driver.exports" & servers="$servers $!"
GOV_RESOURCE=net-service "$tmp/service" "$here/net-service.exports" & servers="$servers $!"
for r in nic net-driver net-service; do
	for _ in $(seq 500); do grep -q server_connected "$GOV_RUN_DIR/$r.log" && break; sleep 0.01; done
done

say "traffic: httpclient fetches 40 pages (httpclient -> net-service on msgqueue)"
show "$tmp/httpclient" 40

say "switching httpclient -> net-service from msgqueue to shm while 300 requests flow"
"$tmp/httpclient" 300 5 >"$tmp/traffic.out" &
client=$!
sleep 0.5
sed -i 's/protocol: msgqueue/protocol: shm/' "$tmp/paper-xcall.yaml"
show govctl rule publish "$tmp/paper-xcall.yaml"
wait "$client"
cat "$tmp/traffic.out"
printf '$ grep edge_switched %s\n' "$GOV_RUN_DIR/httpclient.log"
grep edge_switched "$GOV_RUN_DIR/httpclient.log"

say "publishing a deny: httpclient may no longer fetch (live, no restart)"
sed -i 's/  - {function: svc_fetch, action: forward, resource: httpclient}/  - {function: svc_fetch, action: deny, errno: EACCES, resource: httpclient}/' \
	"$tmp/paper-xcall.yaml"
show govctl rule publish "$tmp/paper-xcall.yaml"
sleep 0.3
show "$tmp/httpclient" 3
show govctl rule diff paper-xcall 2 3

say "the invocation matrix and what the agents counted"
show govctl matrix
show govctl stats
for r in httpclient net-service net-driver; do
	printf '$ govagent --stats %s   # per-edge: protocol, calls, outcomes, direct (shm grants), mean round trip\n' "$r"
	govagent --stats "$r" | python3 -c '
import json, sys
j = json.load(sys.stdin)
for e in j["xcall"]["edges"]:
    print("  %s -> %s: %s, %d calls (%d ok, %d not run, %d unknown; %d direct), %d switch(es), mean %.1f us"
          % (j["resource"], e["to"], e["protocol"], e["calls"], e["ok"], e["not_run"],
             e["unknown"], e["direct"], e["switches"], e["mean_us"]))'
done
say "done"
