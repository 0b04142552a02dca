#!/usr/bin/env bash
# The spine's demo (make demo): a governed program, its agent, rules that
# change while it runs, and what happens when the agent goes away.
#   1. billing runs with its agent tracing send_invoice (the agent counts);
#   2. a deny rule is published live (SIGHUP): invoices are refused, no restart;
#   3. getppid is emulated by a rule: the kernel is never asked;
#   4. the agent stops: the deny stays in force, traced calls run natively.
# Everything lives in a temporary run directory, removed at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build="$top/build"
run=$(mktemp -d /tmp/rhodes-demo.XXXXXX)
export GOV_RUN_DIR="$run"
agent_pid=""
cleanup() {
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
	rm -rf "$run"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

cc -std=gnu11 -O2 -Wall -I"$top/include" "$top/examples/hello/hello.c" \
	-L"$build/lib" -Wl,-rpath,"$build/lib" -lgovrt -o "$run/hello"

cat > "$run/rules.yaml" <<'YAML'
verdicts:
  - function: send_invoice
    action: trace
YAML
say "starting the agent of resource billing (rules: trace send_invoice)"
"$build/bin/govagent" --resource billing --rules "$run/rules.yaml" 2> "$run/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -S "$run/billing.sock" ] && break; sleep 0.02; done

say "running billing (300 rounds, 10 ms apart)"
"$run/hello" 300 &
prog=$!
sleep 1
say "publishing: deny send_invoice with EACCES (live, no restart)"
cat > "$run/rules.yaml" <<'YAML'
verdicts:
  - function: send_invoice
    action: deny
    errno: EACCES
  - syscall: getppid
    action: emulate
    value: 4242
YAML
kill -HUP "$agent_pid"
sleep 1
say "what the agent counted so far"
"$build/bin/govagent" --stats billing
say "stopping the agent: the deny stays in force, the rest runs natively"
kill "$agent_pid"; wait "$agent_pid" || true; agent_pid=""
wait "$prog"
say "the agent's log"
cat "$run/agent.log"
say "done"
