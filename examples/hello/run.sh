#!/usr/bin/env bash
# The demo (make demo): a governed program, its agent, rules published with
# govctl while it runs, and what happens when the agent goes away.
#   1. register resources; one registration breaks the layer rule and is refused;
#   2. billing runs under its agent, which traces send_invoice (counts it);
#   3. a deny rule is published live: invoices are refused, no restart;
#   4. rollback brings the trace back; the matrix and the counts are printed;
#   5. the agent stops: what govrt decides alone stays, the rest runs natively.
# Everything lives in a temporary directory, removed at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build="$top/build"
tmp=$(mktemp -d /tmp/rhodes-demo.XXXXXX)
export GOV_RUN_DIR="$tmp/run" GOV_HOME="$tmp/home"
govctl="$build/bin/govctl"
cleanup() {
	"$govctl" agent stop billing >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

cc -std=gnu11 -O2 -Wall -I"$top/include" "$top/examples/hello/hello.c" \
	-L"$build/lib" -Wl,-rpath,"$build/lib" -lgovrt -o "$tmp/hello"
export PATH="$build/bin:$PATH"

say "registering resources (layers: application -> service -> driver -> hardware)"
show govctl init
show govctl register ledger-db --type hardware
show govctl register bank --type service
show govctl register billing --type application --ref bank
show govctl register audit --type service --ref billing || echo "(refused, as it should be: exit $?)"
show govctl matrix

cat > "$tmp/billing.yaml" <<'YAML'
name: billing
verdicts:
  - function: send_invoice
    action: trace
    resource: billing
YAML
say "publishing rule 'billing' (trace send_invoice) and starting billing's agent"
show govctl rule publish "$tmp/billing.yaml"
show govctl agent start billing

say "running billing (300 rounds, 10 ms apart)"
"$tmp/hello" 300 &
prog=$!
sleep 1
cat > "$tmp/billing.yaml" <<'YAML'
name: billing
verdicts:
  - function: send_invoice
    action: deny
    errno: EACCES
    resource: billing
  - syscall: getppid
    action: emulate
    value: 4242
    resource: billing
YAML
say "publishing version 2: deny send_invoice, emulate getppid (live, no restart)"
show govctl rule publish "$tmp/billing.yaml"
sleep 0.6
show govctl rule diff billing 1 2
say "rolling back to version 1"
show govctl rule rollback billing --to 1
sleep 0.6
say "what the agents counted"
show govctl agent list
show govctl stats
say "publishing the deny again, then stopping the agent: the deny stays, the rest runs natively"
show govctl rule rollback billing --to 2
sleep 0.3
show govctl agent stop billing
wait "$prog"
say "rule history"
show govctl rule history billing
say "done"
