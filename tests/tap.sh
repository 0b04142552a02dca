# shellcheck shell=sh disable=SC2034
# tests/tap.sh - TAP for the shell tests, sourced after $tmp is set:
#   ok STATUS WHAT   one check; on failure, shows the last run's output
#   run CMD...       CMD's stdout in $tmp/out, stderr in $tmp/err, status in $rc
#   finish           the plan line; exit status 0 only if every check passed
n=0
fails=0
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		fails=$((fails + 1))
		[ -n "${tmp:-}" ] && sed 's/^/# /' "$tmp/out" "$tmp/err" 2>/dev/null | tail -20
	fi
}
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
finish() {
	echo "1..$n"
	[ "$fails" -eq 0 ]
}
