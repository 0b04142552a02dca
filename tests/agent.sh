# tests/agent.sh - sourced by shell tests that run one govagent at a time
# for one resource. Set before sourcing: govagent (its path), tmp (the
# test's directory; the agent's stderr goes to $tmp/agent.log),
# GOV_RUN_DIR (where its socket appears) and agent_resource. Gives
# start_agent RULES-FILE (returns once the socket is there, 3 s at most),
# stop_agent, and $agent (its pid, "" when none) for the test's cleanup.
# Not for tests that run several agents or agents with other options.
agent=""

start_agent() { # RULES-FILE
	rm -f "$GOV_RUN_DIR/$agent_resource.sock"
	"$govagent" --resource "$agent_resource" --rules "$1" 2>>"$tmp/agent.log" &
	agent=$!
	w=0
	while [ ! -S "$GOV_RUN_DIR/$agent_resource.sock" ] && [ $w -lt 300 ]; do
		sleep 0.01
		w=$((w + 1))
	done
}

stop_agent() {
	kill "$agent" 2>/dev/null
	wait "$agent" 2>/dev/null
	agent=""
}
