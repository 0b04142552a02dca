#!/bin/sh
# tests/t_etcd.sh - the rule store's etcd backend against a real etcd
# (Debian's etcd-server, started privately on free ports): the store API
# (tests/etcd/store_api.c), govctl's rule tests and the live publish to a
# governed program run again on the etcd store, a watch that outlives an
# etcd restart missing nothing, and an unreachable etcd refused with exit 4.
# TAP output for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
govctl=$top/build/bin/govctl
tmp=$(mktemp -d /tmp/t_etcd.XXXXXX)
. "$top/tests/tap.sh"
. "$top/tests/etcd.sh"
trap 'etcd_stop; rm -rf "$tmp"' EXIT
etcd_start "$tmp"
store="etcd:$ETCD_URL"
export RHODES_TEST_STORE_URL="$store"

tap_relay "store API" "$top/build/tests/etcd_store_api"
RHODES_TEST_RACE_N=100 tap_relay "govctl rules" sh "$top/tests/t_govctl_rules.sh"
tap_relay "live publish" "$top/build/tests/t_publish.t"

# ---- a watch that outlives an etcd restart misses nothing
export GOV_STORE="$store" GOV_RUN_DIR="$tmp/run"
printf 'verdicts:\n  - function: f\n    action: trace\n' >"$tmp/r.yaml"
"$govctl" rule publish "$tmp/r.yaml" --name restart >/dev/null
"$govctl" rule watch /rules/restart/current --count 3 >"$tmp/watch.out" 2>"$tmp/watch.err" &
watcher=$!
sleep 0.5
"$govctl" rule publish "$tmp/r.yaml" --name restart >/dev/null
etcd_stop
sleep 0.3
etcd_restart "$tmp"
"$govctl" rule publish "$tmp/r.yaml" --name restart >/dev/null
"$govctl" rule publish "$tmp/r.yaml" --name restart >/dev/null
i=0
while kill -0 $watcher 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill $watcher 2>/dev/null
wait $watcher
rc=$?
cp "$tmp/watch.out" "$tmp/out"; cp "$tmp/watch.err" "$tmp/err"
[ $rc -eq 0 ] && [ "$(grep -c '^rev .*PUT /rules/restart/current' "$tmp/watch.out")" -eq 3 ]
ok $? "govctl rule watch across an etcd restart sees all 3 publishes (versions 2, 3, 4)"

run "$govctl" --store etcd:http://127.0.0.1:1 rule list
[ $rc -eq 4 ] && grep -q "cannot reach etcd" "$tmp/err"; ok $? "an unreachable etcd: exit 4, saying so"
finish
