#!/bin/sh
# tests/t_rewrite_static.sh - static executables rewritten by govrewrite
# carry govrt-static (runtime/static/, docs/rewrite.md "Static outputs"):
# busybox-static applets give the same bytes with no agent; under a real
# govagent a deny and an emulate rule take effect, a trace of every syscall
# counts what strace -f -c counts for the original, a multi-threaded static
# program stays correct, a fork child is governed, and a rule published in
# the rule store reaches a running static program live; static-pie too;
# every bad input is refused with a clear message and nothing written.
# TAP output for prove.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
gr=${GOVREWRITE:-$top/build/bin/govrewrite}
govagent=${GOVAGENT:-$top/build/bin/govagent}
govctl=${GOVCTL:-$top/build/bin/govctl}
tmp=$(mktemp -d /tmp/rwstatic.XXXXXX)
agent=""
bg=""
cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null
	[ -n "$bg" ] && kill "$bg" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. "$top/tests/tap.sh"
has() { grep -qF -- "$1" "$2"; }

for f in "$gr" "$govagent" "$govctl" /bin/busybox; do
	if [ ! -e "$f" ]; then
		echo "Bail out! $f is missing: run make (and install busybox-static)"
		exit 1
	fi
done
cd "$tmp" || exit 1
mkdir run
export GOV_RUN_DIR="$tmp/run" LC_ALL=C
unset GOV_RESOURCE GOV_FAIL GOV_STORE GOV_LOG
t0=$(date +%s)

start_agent() { # RULES-FILE | --store URL
	rm -f run/st.sock
	if [ "$1" = --store ]; then
		"$govagent" --resource st --store "$2" 2>>"$tmp/agent.log" &
	else
		"$govagent" --resource st --rules "$1" 2>>"$tmp/agent.log" &
	fi
	agent=$!
	w=0
	while [ ! -S run/st.sock ] && [ $w -lt 300 ]; do sleep 0.01; w=$((w + 1)); done
}
stop_agent() {
	kill "$agent" 2>/dev/null
	wait "$agent" 2>/dev/null
	agent=""
}
stats() { "$govagent" --stats st >"$1" 2>>"$tmp/err"; }
# calls the agent counted for CALLEE (summed over its sites)
counted() { # STATS CALLEE
	python3 -c 'import json,sys
print(sum(s["calls"] for s in json.load(open(sys.argv[1]))["sites"] if s["callee"] == sys.argv[2]))' "$1" "$2"
}

# ---- 1. rewriting: the runtime is embedded and reported
run "$gr" --report bb.rep /bin/busybox busybox
ok $rc "govrewrite /bin/busybox (static)"
grep -q '^# govrt-static embedded: [0-9]* bytes at 0x' bb.rep &&
	has "static executable: govrt-static embedded" "$tmp/err"
ok $? "--report and the summary say govrt-static was embedded, with its size"
python3 - busybox /bin/busybox <<'EOF2'
import struct, sys
def hdrs(path):
    b = open(path, 'rb').read()
    entry, phoff = struct.unpack_from('<QQ', b, 24); n, = struct.unpack_from('<H', b, 56)
    ph = [struct.unpack_from('<IIQQQQQQ', b, phoff + 56 * i) for i in range(n)]
    return entry, [p for p in ph if p[0] == 1], ph
entry, loads, ph = hdrs(sys.argv[1])
oentry, oloads, oph = hdrs(sys.argv[2])
assert len(loads) == len(oloads) + 4, "two PT_LOADs for the trampolines, two for govrt-static"
rt = loads[-2:]
assert rt[0][1] == 5 and rt[1][1] == 6, "govrt-static: RX then RW"
assert rt[0][3] <= entry < rt[0][3] + rt[0][6], "e_entry is inside govrt-static"
assert not any(p[0] in (2, 3) for p in ph), "no PT_DYNAMIC, no PT_INTERP"
EOF2
ok $? "OUT: e_entry inside govrt-static's own RX segment, no interpreter, no DT_NEEDED"

# ---- 2. no agent: byte-identical
seq 1 20000 | sed 's/$/ line of text/' >data
awk 'NR % 7 == 3' data | sort -r >unsorted
check() { # WHAT ARGS...  (original vs rewritten, same stdin)
	what=$1
	shift
	/bin/busybox "$@" <data >o1 2>&1
	./busybox "$@" <data >o2 2>&1
	cmp -s o1 o2
	ok $? "$what: byte-identical output"
}
check "echo" echo hello static world
check "cat" cat data
check "ls -la" ls -la /usr/share/doc/busybox-static
check "sort" sort unsorted
check "sha256sum" sha256sum data unsorted
check "wc" wc data
check "md5sum" md5sum unsorted
check "seq" seq 1 3000
check "od -x" od -x unsorted
check "tr" tr a-z A-Z
check "head" head -n 7 data
check "gzip | gunzip" sh -c '/bin/busybox gzip -c data | /bin/busybox gunzip -c | /bin/busybox md5sum'
GOV_RESOURCE=nobody ./busybox sha256sum data >o2 2>"$tmp/err"
/bin/busybox sha256sum data >o1
cmp -s o1 o2 && [ "$(grep -c 'no agent for resource nobody' "$tmp/err")" -eq 1 ]
ok $? "GOV_RESOURCE set, no agent: same output, one warning line (fail open)"

# ---- 3. under a real agent
cat >deny.yaml <<'EOF2'
verdicts:
  - syscall: openat
    action: deny
    errno: EACCES
  - syscall: getuid
    action: emulate
    value: 4242
EOF2
start_agent deny.yaml
GOV_RESOURCE=st ./busybox cat data >o2 2>e2
rc1=$?
GOV_RESOURCE=st ./busybox id -u >id.out 2>>"$tmp/err"
/bin/busybox cat data >o1
stop_agent
cp e2 "$tmp/out"
[ $rc1 -ne 0 ] && has "Permission denied" e2 && [ ! -s o2 ]
ok $? "deny openat EACCES: the rewritten static cat cannot open its file"
[ "$(cat id.out)" = 4242 ]
ok $? "emulate getuid 4242: id -u prints 4242"
GOV_RESOURCE=st ./busybox cat data >o2 2>"$tmp/err" && cmp -s o1 o2
ok $? "the agent gone: the same cat works again (fail open)"

gcc -O2 -g -static "$top/tests/rewrite/sys.c" -o sys_static && gcc -O2 -static-pie "$top/tests/rewrite/sys.c" -o sys_spie
ok $? "tests/rewrite/sys.c builds static and static-pie"
cat >denysys.yaml <<'EOF2'
verdicts:
  - syscall: getppid
    action: deny
    errno: EACCES
  - syscall: getuid
    action: deny
    errno: EPERM
EOF2
./sys_static >want.out
for v in static spie; do
	"$gr" -q "sys_$v" "rw_$v"
	./"rw_$v" >got.out 2>"$tmp/err" && cmp -s want.out got.out
	ok $? "sys_$v rewritten: same output, no agent"
	start_agent denysys.yaml
	GOV_RESOURCE=st ./"rw_$v" >gov.out 2>"$tmp/err"
	stop_agent
	cp gov.out "$tmp/out"
	has "getppid Permission denied" gov.out && has "getuid Operation not permitted" gov.out &&
		has "getpid ok" gov.out && has "write ok" gov.out
	ok $? "sys_$v: deny getppid (number read) and getuid (number in rax) take effect; the rest runs"
done

# every syscall traced: the agent's counts against strace -f -c of the original
{
	echo "verdicts:"
	sed -n 's/^GOV_SYSCALL_ENTRY([0-9]*, *\([a-z_0-9]*\)).*/  - syscall: \1\n    action: trace/p' \
		"$top/include/gov/syscalls.def"
} >traceall.yaml
runs="sha256sum data|sort unsorted|ls -la /usr/share/doc/busybox-static|wc data|cat data|od -x unsorted"
start_agent traceall.yaml
i=0
IFS='|'
for r in $runs; do
	unset IFS
	i=$((i + 1))
	# shellcheck disable=SC2086
	GOV_RESOURCE=st ./busybox $r >"t$i.got" 2>>"$tmp/err"
	# shellcheck disable=SC2086
	/bin/busybox $r >"t$i.want"
	cmp -s "t$i.want" "t$i.got" || echo "# $r: output differs"
	# shellcheck disable=SC2086
	# the same kind of stdout (a file: /dev/null would add glibc's isatty ioctl)
	strace -f -c -o "s$i.txt" /bin/busybox $r >"t$i.strace" 2>>"$tmp/err"
	IFS='|'
done
unset IFS
stats trace.json
stop_agent
cp trace.json "$tmp/out"
python3 - trace.json s[0-9]*.txt >tcmp.out <<'EOF2'
import json, re, sys
got = {}
for s in json.load(open(sys.argv[1]))["sites"]:
    got[s["callee"]] = got.get(s["callee"], 0) + s["calls"]
want = {}
for path in sys.argv[2:]:
    for line in open(path):
        m = re.match(r'\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$', line)
        if m and m.group(2) != "total":
            want[m.group(2)] = want.get(m.group(2), 0) + int(m.group(1))
# execve runs before the program (strace counts it, no site makes it);
# exit_group never returns, so strace -c leaves it out
want.pop("execve", None)
got.pop("exit_group", None)
diff = {k: (want.get(k, 0), got.get(k, 0)) for k in sorted(set(want) | set(got))
        if want.get(k, 0) != got.get(k, 0)}
print("# syscalls: %d kinds, %d calls; differences (strace, agent): %s"
      % (len(want), sum(want.values()), diff or "none"))
sys.exit(1 if diff else 0)
EOF2
st=$?
cat tcmp.out
for k in $(seq 1 $i); do cmp -s "t$k.want" "t$k.got" || st=1; done
ok $st "trace every syscall: 6 applets, same output, the agent's per-syscall counts equal strace -f -c of the originals"

# threads and fork
gcc -O2 -static -pthread "$top/tests/rewrite/static_prog.c" -o prog && "$gr" -q prog prog.rw
ok $? "a multi-threaded static program (gcc -static -pthread) builds and rewrites"
./prog.rw threads 4 2000 >thr.out 2>"$tmp/err" && has "threads 4 x 2000 getppid: 0 wrong" thr.out
ok $? "threads, no agent: correct"
cat >tgp.yaml <<'EOF2'
verdicts:
  - syscall: getppid
    action: trace
EOF2
start_agent tgp.yaml
GOV_RESOURCE=st ./prog.rw threads 8 5000 >thr.out 2>"$tmp/err"
rc1=$?
stats thr.json
n1=$(counted thr.json getppid)
GOV_RESOURCE=st ./prog.rw fork >fork.out 2>>"$tmp/err"
stats fork.json
n2=$(counted fork.json getppid)
GOV_RESOURCE=st ./prog.rw vfork >vfork.out 2>>"$tmp/err"
stats vfork.json
n3=$(counted vfork.json getppid)
stop_agent
cp thr.out "$tmp/out"
[ $rc1 -eq 0 ] && has "threads 8 x 5000 getppid: 0 wrong" thr.out && [ "$n1" -eq 40001 ]
ok $? "8 threads x 5000 traced getppid: every answer right, the agent counted 40001 ($n1)"
has "child exited 0" fork.out && [ $((n2 - n1)) -eq 5 ]
ok $? "fork: the child connects as itself and its 5 getppid calls are traced ($((n2 - n1)))"
has "vfork child exited 0" vfork.out && [ $((n3 - n2)) -eq 3 ]
ok $? "vfork: the child (sharing the parent's memory) leaves the parent's connection alone: its call runs untraced, the parent's 3 are traced ($((n3 - n2)))"
start_agent traceall.yaml
GOV_RESOURCE=st ./prog.rw threads 4 3000 >thr.out 2>"$tmp/err"
rc1=$?
stop_agent
[ $rc1 -eq 0 ] && has "threads 4 x 3000 getppid: 0 wrong" thr.out
ok $? "threads under a trace of every syscall (futex, mmap, clone3 through the agent): correct"

# a rule published in the store reaches a running static program
export GOV_STORE="sqlite:$tmp/store.db"
"$govctl" init >/dev/null 2>&1 && "$govctl" register st --type application >/dev/null 2>&1
cat >r1.yaml <<'EOF2'
name: st-rules
verdicts:
  - {syscall: getpid, action: trace, resource: st}
EOF2
run "$govctl" rule publish r1.yaml
ok $rc "rule store: a first version for st published"
start_agent --store "$GOV_STORE"
GOV_RESOURCE=st ./prog.rw live 20 >live.out 2>"$tmp/err" &
bg=$!
w=0
while ! grep -q ready live.out 2>/dev/null && [ $w -lt 500 ]; do sleep 0.01; w=$((w + 1)); done
sleep 0.2
sed 's/getpid, action: trace/getppid, action: deny, errno: EACCES/' r1.yaml >r2.yaml
"$govctl" rule publish r2.yaml >/dev/null 2>>"$tmp/err"
wait "$bg"
rc1=$?
bg=""
stop_agent
cp live.out "$tmp/out"
[ $rc1 -eq 0 ] && has "getppid failed: Permission denied" live.out
ok $? "govctl rule publish: deny getppid reaches the running static program (its watcher applies the table)"
unset GOV_STORE

# fail closed, no agent: every site fails, the libc's own start-up too
# (govrt-static starts before it), so the program cannot even start
# (in a subshell that reports the crash to /dev/null, not to TAP)
(GOV_FAIL=closed GOV_RESOURCE=nobody ./rw_static >closed.out 2>"$tmp/err"; echo $? >closed.rc) 2>/dev/null
rc1=$(cat closed.rc)
cp closed.out "$tmp/out"
[ $rc1 -ne 0 ] && [ ! -s closed.out ] && has "governed calls fail with an errno" "$tmp/err"
ok $? "GOV_FAIL=closed, no agent: every syscall site fails (start-up included): the program does not run ($rc1)"
GOV_FAIL=closed ./rw_static >closed.out 2>"$tmp/err" && cmp -s want.out closed.out
ok $? "GOV_FAIL=closed without a resource: not governed, runs as the original"

# ---- 4. bad input
GOV_RESOURCE='bad/name' GOV_TIMEOUT_MS=abc GOV_FAIL=sometimes ./busybox echo hi >o2 2>"$tmp/err"
[ "$(cat o2)" = hi ] && has "GOV_RESOURCE=bad/name is not a resource name" "$tmp/err" &&
	has "GOV_TIMEOUT_MS=abc is not a number" "$tmp/err" && has "GOV_FAIL=sometimes is not open, closed" "$tmp/err"
ok $? "bad GOV_RESOURCE, GOV_TIMEOUT_MS, GOV_FAIL: each named in a warning, defaults used, the program runs"
# an agent that refuses the process (it serves another resource)
rm -f run/other.sock
"$govagent" --resource other --rules deny.yaml 2>>"$tmp/agent.log" &
agent=$!
w=0
while [ ! -S run/other.sock ] && [ $w -lt 300 ]; do sleep 0.01; w=$((w + 1)); done
rm -f run/st.sock
ln -s other.sock run/st.sock
GOV_RESOURCE=st ./busybox cat data >o2 2>"$tmp/err"
rc1=$?
stop_agent
rm -f run/st.sock
/bin/busybox cat data >o1
[ $rc1 -eq 0 ] && cmp -s o1 o2 && [ "$(grep -c 'refused this process: this agent serves resource other, not st' "$tmp/err")" -eq 1 ]
ok $? "an agent that refuses the process: one warning with its reason, the deny rule does not apply, cat runs"
bad() { # WHAT MESSAGE IN
	echo previous >out.bad
	cp "$3" in.before
	run "$gr" "$3" out.bad
	[ "$rc" -eq 2 ] && has "$2" "$tmp/err" && [ "$(cat out.bad)" = previous ] && cmp -s in.before "$3" &&
		! ls ./*.govrewrite-* >/dev/null 2>&1
	ok $? "$1: exit 2, \"$2\", OUT untouched, IN unchanged"
}
bad "a rewritten static output" "already rewritten" busybox
# as many program headers as still fit for a dynamic output, not a static one
python3 - sys_static manyph <<'EOF2'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
phoff, = struct.unpack_from('<Q', b, 32); n, = struct.unpack_from('<H', b, 56)
table = bytes(b[phoff:phoff + 56 * n])
total = 0xffff - 4                     # phnum + 3 < PN_XNUM, phnum + 5 is not
off = (len(b) + 7) & ~7
b += bytes(off - len(b)) + table + bytes(56 * (total - n))   # PT_NULL entries
struct.pack_into('<Q', b, 32, off)
struct.pack_into('<H', b, 56, total)
open(sys.argv[2], 'wb').write(b)
EOF2
bad "a static executable with 65531 program headers" "no room for govrt-static" manyph
# code at the very top of the user address space: the runtime cannot follow it
python3 - top <<'EOF2'
import struct, sys
va = 0x7fffffff4000
code = bytes([0xb8, 0x27, 0, 0, 0, 0x0f, 0x05, 0x48, 0x89, 0xc7, 0xb8, 0x3c, 0, 0, 0, 0x0f, 0x05])
eh = struct.pack('<4sBBBBB7xHHIQQQIHHHHHH', b'\x7fELF', 2, 1, 1, 0, 0, 2, 62, 1,
                 va + 0x1000, 64, 0, 0, 64, 56, 1, 64, 0, 0)
ph = struct.pack('<IIQQQQQQ', 1, 5, 0x1000, va + 0x1000, va + 0x1000, len(code), len(code), 0x1000)
out = eh + ph
out += bytes(0x1000 - len(out)) + code
open(sys.argv[1], 'wb').write(out)
EOF2
chmod +x top
bad "a static executable at the top of the address space" "no room for govrt-static" top

echo "# total: $(($(date +%s) - t0)) s"
finish
