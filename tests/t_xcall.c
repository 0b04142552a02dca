/* tests/t_xcall.c - cross-resource calls end to end, with real agents and
 * real processes: this program (resource xc-app) calls functions that a
 * second copy of itself (resource xc-svc, started with "serve") exports.
 *
 *   every protocol (unix, tcp, msgqueue, shm) x every argument type
 *   (integers, unsigned, long, float and double, C strings, input buffers,
 *   out-buffers, errno), each protocol switched to live;
 *   a protocol switch under load from 8 threads: no call lost, duplicated
 *   or reordered within a thread;
 *   the serving process, then the callee's agent, killed mid-call: the
 *   call fails (ECONNABORTED) within the timeout, and calls work again
 *   once they are back;
 *   at most once: a resend of a request id on a new link is answered from
 *   the callee agent's memory, not run again;
 *   mailboxes and direct calls with both sides on one CPU;
 *   bad input: export lists, rule documents, frames on an edge. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "gov/wire.h"
#include "gov/xcall.h"
#include "harness.h"
#include "ruledoc.h"
#include "tap.h"
#include "xcall_io.h"

#define GOV_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define APP "xc-app"
#define SVC "xc-svc"

/* ---- the exported functions; in the caller they say they ran locally ---- */
static int in_server;
#define LOCAL (-7777)

long x_add(long a, long b) { return in_server ? a + b : LOCAL; }
double x_mix(int i, unsigned u, float f, double d, unsigned long L)
{
	return in_server ? i + (double)u + f + d + (double)L : LOCAL;
}
float x_half(float f) { return in_server ? f / 2 : LOCAL; }
long x_strlen(const char *s) { return !in_server ? LOCAL : s ? (long)strlen(s) : -1; }
long x_sum(const void *buf, size_t n)
{
	if (!in_server)
		return LOCAL;
	long sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += ((const unsigned char *)buf)[i];
	return sum;
}
long x_fill(void *out, size_t cap, int c)
{
	if (!in_server)
		return LOCAL;
	memset(out, c, cap);
	if (cap)
		((char *)out)[0] = 'X';
	return (long)cap;
}
int x_fail(int e) { if (!in_server) return LOCAL; errno = e; return -1; }
long x_slow(int ms) { if (in_server) usleep((useconds_t)ms * 1000); return in_server ? ms : LOCAL; }
long x_pid(void) { return in_server ? getpid() : LOCAL; }
/* The most calls of x_overlap running at once that this one saw: it waits
 * up to ms for a second one to come in */
static int overlap_now;
long x_overlap(int ms)
{
	if (!in_server)
		return LOCAL;
	int most = __atomic_add_fetch(&overlap_now, 1, __ATOMIC_SEQ_CST);
	for (long long end = now_ms() + ms; most < 2 && now_ms() < end; usleep(1000)) {
		int n = __atomic_load_n(&overlap_now, __ATOMIC_SEQ_CST);
		most = n > most ? n : most;
	}
	__atomic_sub_fetch(&overlap_now, 1, __ATOMIC_SEQ_CST);
	return most;
}
/* x_slow that says when it runs: <run dir>/held exists while it does */
long x_hold(int ms)
{
	if (!in_server)
		return LOCAL;
	char path[512];
	snprintf(path, sizeof path, "%s/held", getenv("GOV_RUN_DIR"));
	FILE *f = fopen(path, "w");
	if (f)
		fclose(f);
	usleep((useconds_t)ms * 1000);
	unlink(path);
	return ms;
}
static long count;
long x_count(void) { return in_server ? __atomic_add_fetch(&count, 1, __ATOMIC_SEQ_CST) : LOCAL; }
/* 1 if n follows the last n of thread t: nothing lost, duplicated or reordered */
static long last_n[64];
long x_seq(long t, long n)
{
	if (!in_server)
		return LOCAL;
	if (t < 0 || t >= 64)
		return -2;
	int in_order = last_n[t] + 1 == n;
	last_n[t] = n;
	return in_order;
}
long x_unexported(long a) { return in_server ? a : LOCAL; }

/* structs by value, one per x86-64 SysV class the compiler and libffi must
 * agree on: int+double in one register each (pt), three floats in two SSE
 * registers (fl3), more than 16 bytes in memory and returned through a
 * hidden pointer (big), nested with arrays (nest), smaller than a word (sm) */
struct pt { int a; double b; };
struct fl3 { float x, y, z; };
struct big { long a[3]; char tag; short s; };
struct nest { char c; struct { float f; int i; } in; double d[2]; };
struct sm { char a, b; };
struct pt x_pt_scale(struct pt p, int k)
{
	return in_server ? (struct pt){ p.a * k, p.b * k } : (struct pt){ LOCAL, LOCAL };
}
double x_fl3_sum(struct fl3 v) { return in_server ? v.x + v.y + (double)v.z : LOCAL; }
struct big x_big_mk(long add, struct big in)
{
	if (!in_server)
		return (struct big){ .a = { LOCAL }, .tag = 0, .s = 0 };
	in.a[0] += add;
	in.a[2] = -in.a[2];
	in.tag = 'B';
	in.s++;
	return in;
}
long x_nest(struct nest n, const char *s)
{
	return in_server ? n.c + (long)(n.in.f * 10) + n.in.i + (long)(n.d[0] + n.d[1]) + (long)strlen(s)
			 : LOCAL;
}
struct sm x_sm_swap(struct sm v) { return in_server ? (struct sm){ v.b, v.a } : (struct sm){ 0, 0 }; }

/* structs with string and buffer members ({sibz}, and nested {c{sd}s}):
 * their bytes travel after the struct's and the callee's copy points at
 * them. The callee reports what it saw: string lengths (-1 for NULL), the
 * buffer's sum (-1 for NULL) and the scalars, so a wrong pointer, length or
 * offset shows in the result. */
struct msg { const char *name; int n; const void *data; size_t len; };
struct tagged { char tag; struct { const char *s; double d; } in; const char *t; };
static long slen(const char *s) { return s ? (long)strlen(s) : -1; }
long x_msg(struct msg m, long k)
{
	if (!in_server)
		return LOCAL;
	long sum = 0;
	for (size_t i = 0; m.data && i < m.len; i++)
		sum += ((const unsigned char *)m.data)[i];
	if (!m.data)
		sum = -1;
	return slen(m.name) * 1000000000L + sum * 100 + m.n * 10 + k + (m.name && strcmp(m.name, "ping") == 0 ? 7 : 0);
}
long x_tagged(struct tagged a, struct msg m, const char *s)
{
	return in_server ? a.tag + slen(a.in.s) * 1000 + (long)a.in.d + slen(a.t) * 100000 +
				   slen(m.name) * 10000000 + (long)m.len * 100000000 + slen(s) * 1000000000000L
			 : LOCAL;
}

static const char exports_text[] =
	"# xc-svc's exports: NAME TYPES, TAB, prototype\n"
	"x_add lll\tlong x_add(long a, long b)\n"
	"x_mix diufdL\tdouble x_mix(int, unsigned, float, double, unsigned long)\n"
	"x_half ff\n"
	"x_strlen ls\n"
	"x_sum lbz\n"
	"x_fill lozi\n"
	"x_fail ii\n"
	"x_slow li\n"
	"x_hold li\n"
	"x_overlap li\n"
	"x_pid l\n"
	"x_count l\n"
	"x_seq lll\n"
	"x_pt_scale {id}{id}i\tstruct pt x_pt_scale(struct pt p, int k)\n"
	"x_fl3_sum d{3f}\n"
	"x_big_mk {3Lch}l{3Lch}\n"
	"x_nest l{c{fi}2d}s\n"
	"x_sm_swap {2c}{2c}\n"
	"x_msg l{sibz}l\tlong x_msg(struct msg m, long k)\n"
	"x_tagged l{c{sd}s}{sibz}s\n";

static char exports_path[512];

static int serve_main(void)
{
	in_server = 1;
	char err[256];
	if (govrt_serve_start(NULL, err, sizeof err) < 0) {
		fprintf(stderr, "serve: %s\n", err);
		return 1;
	}
	for (;;)
		pause();
}

/* ---- the caller's sites ---- */
static long c_add(long a, long b) { return GOV_CALL("lll", x_add, a, b); }
static double c_mix(int i, unsigned u, float f, double d, unsigned long L)
{
	return GOV_CALL("diufdL", x_mix, i, u, f, d, L);
}
static float c_half(float f) { return GOV_CALL("ff", x_half, f); }
static long c_strlen(const char *s) { return GOV_CALL("ls", x_strlen, s); }
static long c_sum(const void *b, size_t n) { return GOV_CALL("lbz", x_sum, b, n); }
static long c_fill(void *o, size_t n, int c) { return GOV_CALL("lozi", x_fill, o, n, c); }
static int c_fail(int e) { return GOV_CALL("ii", x_fail, e); }
static long c_slow(int ms) { return GOV_CALL("li", x_slow, ms); }
static long c_hold(int ms) { return GOV_CALL("li", x_hold, ms); }
static long c_overlap(int ms) { return GOV_CALL("li", x_overlap, ms); }
static long c_pid(void) { return GOV_CALL("l", x_pid); }
static long c_count(void) { return GOV_CALL("l", x_count); }
static long c_seq(long t, long n) { return GOV_CALL("lll", x_seq, t, n); }
static long c_unexported(long a) { return GOV_CALL("ll", x_unexported, a); }

/* GOV_CALL takes no struct by value: these sites are what a compiler
 * plugin emits for one. A struct argument's word is the address of the
 * caller's copy; a struct return's place is the `ret` word, the site's own
 * zeroed temporary, which it returns whatever govrt says. */
#define STRUCT_SITE(var, fn, types_, np)                                      \
	static struct gov_site var                                            \
		__attribute__((section(GOV_SITES_SECTION), used, aligned(8))) = { \
		.kind = GOV_SITE_CALL, .ret_conv = GOV_RET_LIBC, .nparams = np, \
		.sysno = -1, .caller = __func__, .callee = #fn, .types = types_, \
		.file = __FILE__, .line = __LINE__ }
#define W(x) ((uint64_t)(uintptr_t)(x))
static struct pt c_pt_scale(struct pt p, int k)
{
	STRUCT_SITE(site, x_pt_scale, "{id}{id}i", 2);
	struct pt r = { 0, 0 };
	struct gov_call c = { { W(&p), (uint64_t)(uint32_t)k }, (int64_t)W(&r) };
	if (!site.verdict || __govrt_dispatch(&site, &c) == GOV_RUN_NATIVE)
		return x_pt_scale(p, k);
	return r;
}
/* the same function called with another layout (double first) */
static struct pt c_pt_scale_wrong(struct pt p, int k)
{
	STRUCT_SITE(site, x_pt_scale, "{di}{di}i", 2);
	struct pt r = { 0, 0 };
	struct gov_call c = { { W(&p), (uint64_t)(uint32_t)k }, (int64_t)W(&r) };
	if (!site.verdict || __govrt_dispatch(&site, &c) == GOV_RUN_NATIVE)
		return x_pt_scale(p, k);
	return r;
}
/* A site whose type string changes in place, at the same address (as when
 * a library is unloaded and another loaded where it was): govrt keeps each
 * site's parsed type string for direct calls, and must encode by the text
 * the site has now, not by what it once parsed there. */
static char moving_types[GOV_TYPES_MAX] = "lll";
static long c_add_moving(long a, long b)
{
	STRUCT_SITE(site, x_add, moving_types, 2);
	struct gov_call c = { { (uint64_t)a, (uint64_t)b }, 0 };
	if (!site.verdict || __govrt_dispatch(&site, &c) == GOV_RUN_NATIVE)
		return x_add(a, b);
	return (long)c.ret;
}
static double c_fl3_sum(struct fl3 v)
{
	STRUCT_SITE(site, x_fl3_sum, "d{3f}", 1);
	struct gov_call c = { { W(&v) }, 0 };
	if (!site.verdict || __govrt_dispatch(&site, &c) == GOV_RUN_NATIVE)
		return x_fl3_sum(v);
	double d;
	memcpy(&d, &c.ret, sizeof d);
	return d;
}
static struct big c_big_mk(long add, struct big in)
{
	STRUCT_SITE(site, x_big_mk, "{3Lch}l{3Lch}", 2);
	struct big r;
	memset(&r, 0, sizeof r);
	struct gov_call c = { { (uint64_t)add, W(&in) }, (int64_t)W(&r) };
	if (!site.verdict || __govrt_dispatch(&site, &c) == GOV_RUN_NATIVE)
		return x_big_mk(add, in);
	return r;
}
static long c_nest(struct nest n, const char *s)
{
	STRUCT_SITE(site, x_nest, "l{c{fi}2d}s", 2);
	struct gov_call c = { { W(&n), W(s) }, 0 };
	if (!site.verdict || __govrt_dispatch(&site, &c) == GOV_RUN_NATIVE)
		return x_nest(n, s);
	return c.ret;
}
static struct sm c_sm_swap(struct sm v)
{
	STRUCT_SITE(site, x_sm_swap, "{2c}{2c}", 1);
	struct sm r = { 0, 0 };
	struct gov_call c = { { W(&v) }, (int64_t)W(&r) };
	if (!site.verdict || __govrt_dispatch(&site, &c) == GOV_RUN_NATIVE)
		return x_sm_swap(v);
	return r;
}
static long c_msg(struct msg m, long k)
{
	STRUCT_SITE(site, x_msg, "l{sibz}l", 2);
	struct gov_call c = { { W(&m), (uint64_t)k }, 0 };
	if (!site.verdict || __govrt_dispatch(&site, &c) == GOV_RUN_NATIVE)
		return x_msg(m, k);
	return c.ret;
}
static long c_tagged(struct tagged a, struct msg m, const char *s)
{
	STRUCT_SITE(site, x_tagged, "l{c{sd}s}{sibz}s", 3);
	struct gov_call c = { { W(&a), W(&m), W(s) }, 0 };
	if (!site.verdict || __govrt_dispatch(&site, &c) == GOV_RUN_NATIVE)
		return x_tagged(a, m, s);
	return c.ret;
}

static const char *const fwd_rows =
	"verdicts:\n"
	"  - {function: x_add, action: forward, to: " SVC "}\n"
	"  - {function: x_mix, action: forward, to: " SVC "}\n"
	"  - {function: x_half, action: forward, to: " SVC "}\n"
	"  - {function: x_strlen, action: forward, to: " SVC "}\n"
	"  - {function: x_sum, action: forward, to: " SVC "}\n"
	"  - {function: x_fill, action: forward, to: " SVC "}\n"
	"  - {function: x_fail, action: forward, to: " SVC "}\n"
	"  - {function: x_slow, action: forward, to: " SVC "}\n"
	"  - {function: x_hold, action: forward, to: " SVC "}\n"
	"  - {function: x_overlap, action: forward, to: " SVC "}\n"
	"  - {function: x_pid, action: forward, to: " SVC "}\n"
	"  - {function: x_unexported, action: forward, to: " SVC "}\n"
	"  - {function: x_pt_scale, action: forward, to: " SVC "}\n"
	"  - {function: x_fl3_sum, action: forward, to: " SVC "}\n"
	"  - {function: x_big_mk, action: forward, to: " SVC "}\n"
	"  - {function: x_nest, action: forward, to: " SVC "}\n"
	"  - {function: x_sm_swap, action: forward, to: " SVC "}\n"
	"  - {function: x_msg, action: forward, to: " SVC "}\n"
	"  - {function: x_tagged, action: forward, to: " SVC "}\n"
	/* these two find their callee from the resource's declared exports */
	"  - {function: x_count, action: forward}\n"
	"  - {function: x_seq, action: forward}\n"
	"resources:\n"
	"  - {name: " SVC ", type: service, exports: [x_count, x_seq]}\n";

static pid_t app_agent, svc_agent, server;
static unsigned rules_gen;

static char *rules_for(const char *proto, const char *extra)
{
	static char buf[4096];
	snprintf(buf, sizeof buf, "%s%sprotocols:\n  - {from: " APP ", to: " SVC ", protocol: %s}\n",
		 fwd_rows, extra ? extra : "", proto);
	return buf;
}

static char *stats_of(const char *resource)
{
	char *const argv[] = { GOVAGENT_PATH, "--stats", (char *)resource, NULL };
	char *out = NULL;
	run_capture(argv, &out);
	return out;
}

/* Publishes the protocol to the caller's agent and waits until it is in
 * force (the reload count is the rules' revision for a file). */
/* Waits until the app's agent is past rules revision rev and this process
 * has that agent's decision table in force (the agent applies the rules
 * before it sends the table: a call in between still sees the old one). */
static void wait_app_rules(long rev)
{
	for (long long end = now_ms() + 5000; now_ms() < end && agent_stat(APP, "rules_rev") <= rev;)
		usleep(5000);
	govrt_wait_table((uint64_t)agent_stat(APP, "rules_rev"), 5000);
}

static void use_protocol(const char *proto)
{
	long rev = agent_stat(APP, "rules_rev");
	agent_set_rules(app_agent, APP, rules_for(proto, NULL));
	rules_gen++;
	wait_app_rules(rev);
}

/* Waits until the agent's log holds needle at least `times` times (the log
 * of a restarted agent goes on in the same file). */
static int wait_log_n(const char *resource, const char *needle, int times, int timeout_ms)
{
	for (long long end = now_ms() + timeout_ms; now_ms() < end; usleep(10000)) {
		char *log = agent_log_text(resource);
		int n = 0;
		for (char *p = log; p && (p = strstr(p, needle)); p++)
			n++;
		free(log);
		if (n >= times)
			return 0;
	}
	return -1;
}

static int wait_log(const char *resource, const char *needle, int timeout_ms)
{
	return wait_log_n(resource, needle, 1, timeout_ms);
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int edge_up(const char *resource)
{
	for (long long end = now_ms() + 5000; now_ms() < end; usleep(2000)) {
		int fd = harness_edge_connect(resource);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
	}
	return -1;
}

/* ---- structs with string and buffer members on one protocol ---- */
static void struct_member_battery(const char *proto)
{
	unsigned char bytes[20000];
	long sum = 0;
	for (size_t i = 0; i < sizeof bytes; i++)
		sum += bytes[i] = (unsigned char)(i * 13);
	is_long(c_msg((struct msg){ "ping", 4, bytes, 3 }, 2),
		4 * 1000000000L + (0 + 13 + 26) * 100 + 40 + 2 + 7,
		"%s: a struct with a string and a buffer member", proto);
	is_long(c_msg((struct msg){ "big", 1, bytes, sizeof bytes }, 0),
		3 * 1000000000L + sum * 100 + 10, "%s: with a 20 kB buffer member", proto);
	is_long(c_msg((struct msg){ NULL, 1, NULL, 99 }, 0), -1000000000L - 100 + 10,
		"%s: NULL string and buffer members stay NULL", proto);
	is_long(c_msg((struct msg){ "", 2, bytes, 0 }, 0), 20,
		"%s: an empty string and a zero-length buffer member", proto);
	struct tagged tg = { 'A', { "xy", 5.5 }, "abcdef" };
	is_long(c_tagged(tg, (struct msg){ "q", 0, bytes, 8 }, "12345"),
		'A' + 2 * 1000 + 5 + 6 * 100000 + 1 * 10000000 + 8 * 100000000L + 5 * 1000000000000L,
		"%s: a nested struct's string member, two structs and a string", proto);
	tg.in.s = NULL;
	is_long(c_tagged(tg, (struct msg){ NULL, 0, NULL, 0 }, NULL),
		'A' - 1000 + 5 + 6 * 100000 - 10000000 - 1000000000000L,
		"%s: NULL members of a nested struct", proto);
}

/* ---- structs by value on one protocol ---- */
static void struct_battery(const char *proto)
{
	struct pt p = c_pt_scale((struct pt){ 7, 1.25 }, 3);
	ok(p.a == 21 && p.b == 3.75, "%s: struct {int; double} by value, and returned (%d %g)",
	   proto, p.a, p.b);
	double s = c_fl3_sum((struct fl3){ 1.5f, 2.25f, 4.0f });
	ok(s == 7.75, "%s: struct of three floats by value -> double (%g)", proto, s);
	struct big in = { { 100, 200, 300 }, 'x', 41 };
	struct big b = c_big_mk(5, in);
	ok(b.a[0] == 105 && b.a[1] == 200 && b.a[2] == -300 && b.tag == 'B' && b.s == 42,
	   "%s: a 32-byte struct in and out (memory class, hidden return pointer)", proto);
	struct nest n = { 3, { 1.5f, 40 }, { 100.0, 0.5 } };
	is_long(c_nest(n, "abcd"), 3 + 15 + 40 + 100 + 4, "%s: nested struct with an array, and a string",
		proto);
	struct sm sw = c_sm_swap((struct sm){ 'a', 'b' });
	ok(sw.a == 'b' && sw.b == 'a', "%s: a 2-byte struct in and out", proto);
	struct_member_battery(proto);
	errno = 0;
	struct pt w = c_pt_scale_wrong((struct pt){ 7, 1.25 }, 3);
	ok(errno == ENOSYS && w.a == 0 && w.b == 0,
	   "%s: a caller whose layout differs from the export's is refused, not called "
	   "(errno %d)", proto, errno);
}

/* ---- every argument type on one protocol ---- */
static void battery(const char *proto)
{
	is_long(c_add(40, 2), 42, "%s: long, long -> long", proto);
	is_long(c_add(-5, -7), -12, "%s: negative longs", proto);
	double m = c_mix(-3, 4000000000u, 0.5f, 0.25, 1ul << 40);
	ok(fabs(m - (-3 + 4000000000.0 + 0.75 + 1099511627776.0)) < 1e-6,
	   "%s: int, unsigned, float, double, unsigned long -> double (%f)", proto, m);
	float h = c_half(3.0f);
	ok(h == 1.5f, "%s: float -> float (%f)", proto, (double)h);
	is_long(c_strlen("hello, callee"), 13, "%s: C string travels by value", proto);
	is_long(c_strlen(""), 0, "%s: empty C string", proto);
	is_long(c_strlen(NULL), -1, "%s: NULL string stays NULL", proto);
	unsigned char buf[3000];
	long want = 0;
	for (size_t i = 0; i < sizeof buf; i++)
		want += buf[i] = (unsigned char)(i * 7);
	is_long(c_sum(buf, sizeof buf), want, "%s: input buffer with its length", proto);
	is_long(c_sum(buf, 0), 0, "%s: zero-length input buffer", proto);
	char out[100];
	memset(out, 0, sizeof out);
	is_long(c_fill(out, 64, 'q'), 64, "%s: out-buffer call returns", proto);
	ok(out[0] == 'X' && out[1] == 'q' && out[63] == 'q' && out[64] == 0,
	   "%s: out-buffer filled by the callee, exactly its capacity", proto);
	static char big[100000];
	is_long(c_fill(big, sizeof big, 'z'), (long)sizeof big, "%s: 100 kB out-buffer", proto);
	ok(big[0] == 'X' && big[sizeof big - 1] == 'z', "%s: 100 kB out-buffer came back", proto);
	errno = 0;
	is_long(c_fail(EDOM), -1, "%s: the callee's return value", proto);
	is_long(errno, EDOM, "%s: and its errno", proto);
	/* govrt waits for the answer (futexes, polls, with timeouts); a call
	 * that succeeds must not show what those left in errno */
	errno = ERANGE;
	is_long(c_slow(60), 60, "%s: a 60 ms call", proto);
	is_long(errno, ERANGE, "%s: succeeds and leaves the caller's errno as it was", proto);
	errno = 0;
	is_long(c_unexported(5), -1, "%s: a function the callee does not export fails", proto);
	is_long(errno, ENOSYS, "%s: with ENOSYS", proto);
	struct_battery(proto);
	long base = c_count();
	for (int i = 0; i < 200; i++)
		c_count();
	is_long(c_count(), base + 201, "%s: 200 calls, each run exactly once", proto);
	is_long(c_pid(), server, "%s: it ran in the serving process", proto);
	char *st = stats_of(APP), pat[64];
	snprintf(pat, sizeof pat, "\"protocol\":\"%s\"", proto);
	has_str(st, pat, "%s: the edge's statistics name the protocol in force", proto);
	free(st);
}

/* ---- protocol switch under load ---- */
#define LOAD_THREADS 8
static volatile int load_stop;
static long load_bad[LOAD_THREADS], load_done[LOAD_THREADS];

static void *load_thread(void *p)
{
	long t = (long)(intptr_t)p;
	for (long n = 1; !load_stop; n++) {
		long r = c_seq(t, n);
		if (r != 1) {
			load_bad[t]++;
			if (load_bad[t] < 3)
				diag("thread %ld call %ld: %ld (errno %d)", t, n, r, errno);
		}
		load_done[t] = n;
	}
	return NULL;
}

static void switch_under_load(void)
{
	pthread_t th[LOAD_THREADS];
	use_protocol("msgqueue");
	for (long t = 0; t < LOAD_THREADS; t++)
		pthread_create(&th[t], NULL, load_thread, (void *)(intptr_t)t);
	const char *seq[] = { "shm", "unix", "tcp", "msgqueue", "shm" };
	for (size_t i = 0; i < GOV_ARRAY_LEN(seq); i++) {
		usleep(150000);
		use_protocol(seq[i]);
	}
	usleep(150000);
	load_stop = 1;
	long bad = 0, total = 0;
	for (int t = 0; t < LOAD_THREADS; t++) {
		pthread_join(th[t], NULL);
		bad += load_bad[t];
		total += load_done[t];
	}
	diag("%ld calls from %d threads across 5 switches", total, LOAD_THREADS);
	ok(total > LOAD_THREADS * 10, "8 threads kept calling during the switches");
	is_long(bad, 0, "no call lost, duplicated or reordered within a thread");
	char *log = agent_log_text(APP);
	int n = 0;
	for (char *p = log; p && (p = strstr(p, "event=edge_switched")); p++)
		n++;
	ok(n >= 5, "the agent logged each switch (%d lines)", n);
	has_str(log, "protocol=shm old=msgqueue at=", "a switch's log line says from, to and when");
	free(log);
	char *st = stats_of(APP);
	has_str(st, "\"protocol\":\"shm\"", "after the switches the edge is on shm");
	free(st);
}

/* ---- several calls in flight on one edge ---- */
#define FLIGHT_CALLS 40
/* n threads of fn, each given its index; the sum of their bad[] once all
 * have ended */
static long run_threads(int n, void *(*fn)(void *), const long *bad)
{
	pthread_t th[LOAD_THREADS];
	for (long t = 0; t < n && t < LOAD_THREADS; t++)
		pthread_create(&th[t], NULL, fn, (void *)(intptr_t)t);
	long sum = 0;
	for (int t = 0; t < n && t < LOAD_THREADS; t++) {
		pthread_join(th[t], NULL);
		sum += bad[t];
	}
	return sum;
}

static long flight_bad[LOAD_THREADS];

/* Threads 16.. of x_seq: each call follows the thread's last one; every
 * tenth call is a slow one, so that calls of the threads overlap. */
static void *flight_thread(void *p)
{
	long t = (long)(intptr_t)p;
	for (long n = 1; n <= FLIGHT_CALLS; n++) {
		if (n % 10 == 0 && c_slow(5) != 5)
			flight_bad[t]++;
		if (c_seq(16 + t, n) != 1)
			flight_bad[t]++;
	}
	return NULL;
}

static void in_flight(const char *proto)
{
	use_protocol(proto);
	for (long t = 0; t < LOAD_THREADS; t++) {
		flight_bad[t] = 0;
		c_seq(16 + t, 0); /* the thread's numbering starts over */
	}
	long bad = run_threads(LOAD_THREADS, flight_thread, flight_bad);
	is_long(bad, 0, "%s, 8 threads: every call ran once, in its thread's order", proto);
	char *st = stats_of(APP), pat[64];
	snprintf(pat, sizeof pat, "\"protocol\":\"%s\"", proto);
	has_str(st, pat, "%s: the edge is on it", proto);
	free(st);
	long max = agent_stat(APP, "in_flight_max");
	ok(max >= 2 && max <= GOV_XCALL_LANES, "%s: several calls were in flight on the edge at once "
	   "(at most %ld)", proto, max);
}

/* ---- failures ---- */
struct slow_arg {
	int ms;
	long r;
	int err;
	long long took;
	long (*site)(int); /* NULL: c_slow */
};

static void *slow_thread(void *p)
{
	struct slow_arg *a = p;
	long long t0 = now_ms();
	errno = 0;
	a->r = (a->site ? a->site : c_slow)(a->ms);
	a->err = errno;
	a->took = now_ms() - t0;
	return NULL;
}

/* A 5 s call, and the serving process killed 300 ms into it. */
static struct slow_arg server_killed_mid_call(void)
{
	struct slow_arg a = { .ms = 5000 };
	pthread_t th;
	pthread_create(&th, NULL, slow_thread, &a);
	usleep(300000);
	stop(server);
	pthread_join(th, NULL);
	return a;
}

/* ---- direct grants on shm edges (docs/xcall.md "Direct calls") ---- */

static long direct_calls(void)
{
	return agent_stat(APP, "direct");
}

static int raw_link(void);

/* A GRANT spoken by hand on a unix link: refused, saying why. */
static void grant_on_unix(void)
{
	int fd = raw_link();
	struct gov_xcall_hdr h, rep;
	gov_xcall_init(&h, GOV_XCALL_GRANT);
	h.caller_epoch = 777;
	h.req_id = 1;
	gov_xcall_send(fd, 1, &h, NULL);
	int r = gov_xcall_recv(fd, 1, &rep, NULL, 0, 3000, NULL, 0);
	ok(r == 1 && rep.type == GOV_XCALL_RESULT && rep.status == GOV_XCALL_NOT_RUN,
	   "a GRANT on a unix link is refused (status %d)", r == 1 ? rep.status : -1);
	has_str(r == 1 ? rep.text : "", "shm link", "and the answer says why");
	close(fd);
}

static int log_count(const char *resource, const char *needle)
{
	int n = 0;
	char *log = agent_log_text(resource);
	for (char *p = log; p && (p = strstr(p, needle)); p++)
		n++;
	free(log);
	return n;
}

static int granted_soon(void)
{
	for (long long end = now_ms() + 5000; now_ms() < end; usleep(20000)) {
		char *st = stats_of(APP);
		int yes = st && strstr(st, "\"direct_granted\":true");
		free(st);
		if (yes)
			return 1;
	}
	return 0;
}

/* The grant in force in this process too: the agent's statistics say
 * granted once it sent the GRANT, which this process's watcher thread
 * takes in a little later; until then calls take the agents' path. */
static int direct_in_force(void)
{
	if (!granted_soon())
		return 0;
	long before = direct_calls();
	for (long long end = now_ms() + 5000; now_ms() < end; usleep(20000))
		if (c_add(0, 0) == 0 && direct_calls() > before)
			return 1;
	return 0;
}

/* ---- direct calls with the caller and the serving process on one CPU ----
 * Each side of a box yields at once when the other last posted from its
 * CPU (gov/xcall.h): here that is always so. Functional, no timing: every
 * answer checked, from one thread and from several with calls in flight. */

#define ONE_CPU_CALLS 2000
#define ONE_CPU_THREADS 4

static int first_cpu(void)
{
	cpu_set_t s;
	if (sched_getaffinity(0, sizeof s, &s) < 0)
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &s))
			return c;
	return -1;
}

/* Every thread of pid onto the CPUs of set (threads it starts later
 * inherit their starter's). Returns how many threads refused. */
static int pin_threads(pid_t pid, const cpu_set_t *set)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int bad = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			bad += sched_setaffinity(atoi(e->d_name), sizeof *set, set) < 0;
	closedir(d);
	return bad;
}

static long one_cpu_bad[ONE_CPU_THREADS];

/* Threads 32.. of x_seq, each also adding: in order, every answer right */
static void *one_cpu_thread(void *p)
{
	long t = (long)(intptr_t)p;
	for (long n = 1; n <= ONE_CPU_CALLS / ONE_CPU_THREADS; n++)
		one_cpu_bad[t] += (c_seq(32 + t, n) != 1) + (c_add(n, t) != n + t);
	return NULL;
}

/* Two threads of this process on one CPU hand frames back and forth
 * through a mailbox pair, as a direct box's two sides do: spinning first
 * (each yields at once to the other) and sleeping at once (each post must
 * wake the other). */
#define PINGPONG_FRAMES 10000
struct pingpong {
	struct gov_xcall_box *box;
	cpu_set_t cpu;
	long spin_ns, bad;
};

static void *pong_thread(void *p)
{
	struct pingpong *pp = p;
	sched_setaffinity(0, sizeof pp->cpu, &pp->cpu);
	uint32_t seen = 0;
	for (long n = 1; n <= PINGPONG_FRAMES; n++) {
		if (gov_xcall_box_wait(&pp->box->mb[0], &seen, -1, pp->spin_ns, 20, 10000) != 1) {
			pp->bad++;
			break;
		}
		uint64_t v;
		memcpy(&v, pp->box->mb[0].data, sizeof v);
		pp->bad += v != (uint64_t)n;
		v = 2 * v;
		memcpy(pp->box->mb[1].data, &v, sizeof v);
		gov_xcall_box_post(&pp->box->mb[1], sizeof v);
	}
	return NULL;
}

static void mailbox_on_one_cpu(long spin_ns)
{
	int cpu = first_cpu();
	const char *how = spin_ns ? "spinning" : "sleeping";
	struct pingpong pp = { .box = mmap(NULL, sizeof *pp.box, PROT_READ | PROT_WRITE,
					   MAP_SHARED | MAP_ANONYMOUS, -1, 0), .spin_ns = spin_ns };
	CPU_ZERO(&pp.cpu);
	CPU_SET(cpu, &pp.cpu);
	cpu_set_t mine;
	sched_getaffinity(0, sizeof mine, &mine);
	ok(cpu >= 0 && pp.box != MAP_FAILED && sched_setaffinity(0, sizeof pp.cpu, &pp.cpu) == 0,
	   "mailbox, %s: two threads on CPU %d", how, cpu);
	pthread_t th;
	pthread_create(&th, NULL, pong_thread, &pp);
	uint32_t seen = 0;
	long bad = 0, n;
	for (n = 1; n <= PINGPONG_FRAMES; n++) {
		uint64_t v = (uint64_t)n;
		memcpy(pp.box->mb[0].data, &v, sizeof v);
		gov_xcall_box_post(&pp.box->mb[0], sizeof v);
		if (gov_xcall_box_wait(&pp.box->mb[1], &seen, -1, spin_ns, 20, 10000) != 1)
			break;
		memcpy(&v, pp.box->mb[1].data, sizeof v);
		bad += v != 2 * (uint64_t)n;
	}
	pthread_join(th, NULL);
	is_long(n - 1, PINGPONG_FRAMES, "mailbox, %s: %d frames each way, none lost (a sleeper "
		"not woken would show after a 20 ms slice)", how, PINGPONG_FRAMES);
	is_long(bad + pp.bad, 0, "mailbox, %s: each read as written and answered with its own", how);
	is_long(pp.box->mb[0].cpu, cpu + 1, "mailbox, %s: the requests' writer noted its CPU", how);
	is_long(pp.box->mb[1].cpu, cpu + 1, "mailbox, %s: and so did the answers' writer", how);
	sched_setaffinity(0, sizeof mine, &mine);
	munmap(pp.box, sizeof *pp.box);
}

static void direct_on_one_cpu(void)
{
	int cpu = first_cpu();
	cpu_set_t one, mine, theirs;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	sched_getaffinity(0, sizeof mine, &mine);
	sched_getaffinity(server, sizeof theirs, &theirs);
	ok(cpu >= 0 && pin_threads(server, &one) == 0 && sched_setaffinity(0, sizeof one, &one) == 0,
	   "one CPU: this thread and every thread of the serving process on CPU %d", cpu);
	long before = direct_calls(), good = 0;
	for (long i = 0; i < ONE_CPU_CALLS; i++)
		good += c_add(i, 7 * i) == 8 * i;
	is_long(good, ONE_CPU_CALLS, "one CPU: every direct call answers correctly");
	long direct = direct_calls() - before;
	ok(direct >= ONE_CPU_CALLS * 3 / 4, "one CPU: straight to the serving process (%ld of %d)",
	   direct, ONE_CPU_CALLS);
	before = direct_calls();
	long bad = run_threads(ONE_CPU_THREADS, one_cpu_thread, one_cpu_bad);
	is_long(bad, 0, "one CPU, %d threads with calls in flight: nothing lost, wrong or reordered",
		ONE_CPU_THREADS);
	ok(direct_calls() - before >= ONE_CPU_CALLS, "one CPU, %d threads: through the boxes (%ld of %d)",
	   ONE_CPU_THREADS, direct_calls() - before, 2 * ONE_CPU_CALLS);
	sched_setaffinity(0, sizeof mine, &mine);
	pin_threads(server, &theirs);
}

static void direct_grants(char *self)
{
	use_protocol("shm");
	is_long(c_add(1, 2), 3, "shm: a call (the first takes the agents' path)");
	ok(granted_soon(), "the callee's agent has granted the edge boxes in its serving process");
	long before = direct_calls(), served = agent_stat(SVC, "served"), good = 0;
	for (long i = 0; i < 200; i++)
		good += c_add(i, 1) == i + 1;
	is_long(good, 200, "calls through the grant answer correctly");
	long direct = direct_calls() - before;
	ok(direct >= 150, "they go straight to the serving process (%ld of 200)", direct);
	ok(agent_stat(SVC, "served") - served <= 200 - direct,
	   "with the callee's agent off their path (it served %ld)", agent_stat(SVC, "served") - served);
	direct_on_one_cpu();
	before = direct_calls();
	struct_member_battery("shm direct");
	ok(direct_calls() - before >= 5, "structs with string and buffer members go direct too (%ld of 6)",
	   direct_calls() - before);

	before = direct_calls();
	is_long(c_add_moving(20, 22), 42, "a direct call from a site whose type string will change");
	strcpy(moving_types, "lli");
	errno = 0;
	is_long(c_add_moving(1, 2), -1, "its type string changed in place to lli: the call is refused");
	is_long(errno, ENOSYS, "as a layout mismatch, the request encoded as the string says now");
	strcpy(moving_types, "lll");
	is_long(c_add_moving(2, 3), 5, "and back to lll, it runs");
	ok(direct_calls() - before >= 3, "all three directly (%ld)", direct_calls() - before);

	/* a deny rule takes effect at once: the process's table stops naming
	 * the grant for that function */
	char rules[4096];
	const char *fwd = "  - {function: x_add, action: forward, to: " SVC "}\n";
	const char *t = rules_for("shm", NULL), *at = strstr(t, fwd);
	snprintf(rules, sizeof rules, "%.*s  - {function: x_add, action: deny, errno: EACCES}\n%s",
		 (int)(at - t), t, at + strlen(fwd));
	long rev = agent_stat(APP, "rules_rev");
	agent_set_rules(app_agent, APP, rules);
	wait_app_rules(rev);
	errno = 0;
	is_long(c_add(1, 1), -1, "a deny rule published on a direct edge: the call is denied");
	is_long(errno, EACCES, "with its errno");
	before = direct_calls();
	is_long(c_count() > 0, 1, "and the edge's other functions still go direct");
	use_protocol("shm");
	is_long(c_add(2, 2), 4, "the forward back in force");
	ok(direct_calls() > before, "direct calls counted (%ld)", direct_calls() - before);

	/* the serving process dies inside a direct call */
	struct slow_arg a = server_killed_mid_call();
	is_long(a.r, -1, "serving process killed mid direct call: the call fails");
	is_long(a.err, ECONNABORTED, "with ECONNABORTED: it may have run");
	ok(a.took < 1000, "soon, not at the timeout (%lld ms)", a.took);
	int granted = log_count(APP, "event=direct_granted");
	server = serving_start(self, SVC, exports_path);
	long r = -1;
	for (long long end = now_ms() + 5000; now_ms() < end && (r = c_add(5, 5)) != 10;)
		usleep(20000);
	is_long(r, 10, "calls work again with a new serving process");
	ok(wait_log_n(APP, "event=direct_granted", granted + 1, 12000) == 0,
	   "and the edge gets a new grant, in it");

	/* a switch revokes the grant after the direct calls drain */
	int revoked = log_count(APP, "event=direct_revoked");
	use_protocol("unix");
	ok(wait_log_n(APP, "event=direct_revoked", revoked + 1, 5000) == 0,
	   "switching to unix revokes the grant");
	before = direct_calls();
	served = agent_stat(SVC, "served");
	is_long(c_add(3, 3), 6, "calls go on over unix");
	ok(direct_calls() == before && agent_stat(SVC, "served") > served,
	   "through the agents again");
	grant_on_unix();
}

static void killed_mid_call(char *self)
{
	pthread_t th;
	struct slow_arg a = server_killed_mid_call();
	is_long(a.r, -1, "serving process killed mid-call: the call fails");
	is_long(a.err, ECONNABORTED, "with ECONNABORTED: it may have run, nobody knows");
	ok(a.took < 2000, "within the timeout (%lld ms)", a.took);
	errno = 0;
	is_long(c_add(1, 2), -1, "no serving process: the call fails");
	is_long(errno, EHOSTUNREACH, "with EHOSTUNREACH: it did not run");
	server = serving_start(self, SVC, exports_path);
	is_long(c_add(1, 2), 3, "a new serving process takes calls again");

	/* the callee's agent killed mid-call, on every protocol */
	const char *protos[] = { "unix", "tcp", "msgqueue", "shm" };
	for (size_t i = 0; i < GOV_ARRAY_LEN(protos); i++) {
		const char *p = protos[i];
		use_protocol(p);
		is_long(c_add(1, 1), 2, "%s: a call before the callee's agent dies", p);
		struct slow_arg b = { .ms = 5000 };
		pthread_create(&th, NULL, slow_thread, &b);
		usleep(300000);
		agent_kill(svc_agent);
		pthread_join(th, NULL);
		is_long(b.r, -1, "%s: callee's agent killed mid-call: the call fails", p);
		/* on shm the call may have gone straight to the serving process
		 * (a direct grant), which goes on running it: then the caller
		 * gives up at its timeout */
		ok(b.err == ECONNABORTED || (strcmp(p, "shm") == 0 && b.err == ETIMEDOUT),
		   "%s: with ECONNABORTED%s (%d)", p, strcmp(p, "shm") == 0 ? " or ETIMEDOUT" : "", b.err);
		ok(b.took < 2000, "%s: within the timeout (%lld ms)", p, b.took);
		errno = 0;
		is_long(c_add(1, 2), -1, "%s: no callee agent: the call fails", p);
		is_long(errno, EHOSTUNREACH, "%s: with EHOSTUNREACH", p);
		const char *const extra[] = { "--edge-tcp", "127.0.0.1:0", "--resend-keep-s", "2", NULL };
		svc_agent = agent_start(SVC, NULL, extra);
		edge_up(SVC);
		char needle[96];
		snprintf(needle, sizeof needle, "event=server_connected resource=" SVC " pid=%d via=mailbox", (int)server);
		ok(wait_log_n(SVC, needle, (int)i + 2, 5000) == 0,
		   "%s: the serving process reconnected to the new agent", p);
		is_long(c_add(2, 2), 4, "%s: calls work again", p);
	}
	use_protocol("unix");

	/* a hung callee: no answer within the caller agent's timeout */
	struct slow_arg c = { .ms = 2500 };
	slow_thread(&c);
	is_long(c.r, -1, "a callee that does not answer in time: the call fails");
	ok(c.err == ETIMEDOUT || c.err == ECONNABORTED, "with ETIMEDOUT or ECONNABORTED (%d)", c.err);
	ok(c.took < 2000, "before the caller's own timeout (%lld ms)", c.took);
	/* the stuck server was dropped; it reconnects once its call ends */
	long r = -1;
	for (long long end = now_ms() + 5000; now_ms() < end && (r = c_add(3, 4)) != 7;)
		usleep(50000);
	is_long(r, 7, "and the edge recovers once the callee is back");
}

/* ---- at most once, spoken directly to the callee's agent ---- */
static int raw_link(void)
{
	return harness_edge_hello(SVC, "xc-raw", 777, NULL);
}

/* One CALL of site with call's arguments as caller agent epoch on lane,
 * by hand. */
static long raw_call_on(int fd, uint64_t epoch, int lane, uint64_t id,
			const struct gov_site *site, const struct gov_call *call, int *status)
{
	unsigned char frame[512];
	static unsigned char out[GOV_XCALL_BODY_MAX];
	long len = gov_wire_encode_req(frame, sizeof frame, id, site, call, NULL, 0);
	struct gov_xcall_hdr h, rep;
	gov_xcall_init(&h, GOV_XCALL_CALL);
	h.caller_epoch = epoch;
	h.req_id = id;
	h.lane = (uint8_t)lane;
	h.body_len = (uint32_t)len;
	gov_xcall_send(fd, 1, &h, frame);
	if (gov_xcall_recv(fd, 1, &rep, out, sizeof out, 2000, NULL, 0) != 1)
		return -999;
	*status = rep.status;
	return rep.value;
}

static const struct gov_site count_site = { .kind = GOV_SITE_CALL, .sysno = -1,
					    .callee = "x_count", .types = "l" };

static long raw_call_as(int fd, uint64_t epoch, uint64_t id, const struct gov_site *site,
			const struct gov_call *call, int *status)
{
	return raw_call_on(fd, epoch, 0, id, site, call, status);
}

static long raw_call_lane(int fd, uint64_t id, int lane, int *status)
{
	struct gov_call call = { { 0 }, 0 };
	return raw_call_on(fd, 777, lane, id, &count_site, &call, status);
}

static long raw_call(int fd, uint64_t id, int *status)
{
	return raw_call_lane(fd, id, 0, status);
}

/* The callee agent's resend memory is bounded: a result is kept until the
 * next request of its caller acknowledges it, and a caller agent epoch
 * silent for --resend-keep-s (2 s here) is forgotten. */
static void resend_cache(void)
{
	static const struct gov_site fill_site = { .kind = GOV_SITE_CALL, .sysno = -1,
						   .callee = "x_fill", .types = "lozi" };
	struct gov_call fill = { { 1, 100000, 'q' }, 0 };
	struct gov_call none = { { 0 }, 0 };
	int fd = raw_link(), st = -1;
	long base = agent_stat(SVC, "resend_cache_bytes");
	is_long(raw_call_as(fd, 888, 1, &fill_site, &fill, &st), 100000, "a call with a 100 kB result");
	long big = agent_stat(SVC, "resend_cache_bytes");
	ok(big >= base + 100000, "its result is kept for a resend (%ld bytes, %ld before)", big, base);
	long n = raw_call_as(fd, 888, 2, &count_site, &none, &st);
	long small = agent_stat(SVC, "resend_cache_bytes");
	ok(small < big - 90000, "the next request acknowledges it: dropped (%ld bytes)", small);
	ok(raw_call_as(fd, 888, 2, &count_site, &none, &st) == n && st == GOV_XCALL_OK,
	   "the unacknowledged last result still answers its resend");
	raw_call_as(fd, 888, 1, &fill_site, &fill, &st);
	is_long(st, GOV_XCALL_UNKNOWN, "the acknowledged id is 'outcome unknown', not run again");
	long callers = agent_stat(SVC, "resend_cache_callers");
	ok(callers >= 2, "the callee's agent remembers %ld caller epochs", callers);
	usleep(2500 * 1000);
	raw_call_as(fd, 999, 1, &count_site, &none, &st);
	is_long(agent_stat(SVC, "resend_cache_callers"), 1,
		"after 2 s of silence the other epochs are forgotten; only the new one is kept");
	close(fd);
}

static void at_most_once(void)
{
	int fd = raw_link(), st = -1;
	ok(fd >= 0, "a link to the callee's agent, spoken by hand");
	long first = raw_call(fd, 5, &st);
	ok(st == GOV_XCALL_OK && first > 0, "request 5 ran (count %ld)", first);
	close(fd); /* the link breaks after the answer was sent */
	fd = raw_link();
	long again = raw_call(fd, 5, &st);
	ok(st == GOV_XCALL_OK && again == first, "its resend on a new link gets the same answer (%ld)", again);
	long next = raw_call(fd, 6, &st);
	is_long(next, first + 1, "the resend did not run it again; request 6 does run");
	raw_call(fd, 4, &st);
	is_long(st, GOV_XCALL_UNKNOWN, "an id older than the last gets 'outcome unknown', never a run");
	ok(agent_stat(SVC, "resends_answered") >= 1, "the callee's agent counted the answered resend");
	/* lanes: each of a caller agent's links has its own last id */
	long l1 = raw_call_lane(fd, 20, 1, &st);
	ok(st == GOV_XCALL_OK && l1 == first + 2, "request 20 on lane 1 ran");
	long l2 = raw_call_lane(fd, 19, 2, &st);
	ok(st == GOV_XCALL_OK && l2 == first + 3, "request 19 on lane 2 ran: ids are per lane");
	long l2again = raw_call_lane(fd, 19, 2, &st);
	ok(st == GOV_XCALL_OK && l2again == l2, "its resend on lane 2 gets the same answer (%ld)", l2again);
	raw_call_lane(fd, 18, 1, &st);
	is_long(st, GOV_XCALL_UNKNOWN, "an older id on lane 1 gets 'outcome unknown'");

	/* bad frames */
	struct gov_xcall_hdr h;
	gov_xcall_init(&h, GOV_XCALL_CALL);
	h.caller_epoch = 777;
	h.req_id = 7;
	h.body_len = 16;
	char junk[16] = "not a frame....";
	gov_xcall_send(fd, 1, &h, junk);
	struct gov_xcall_hdr rep;
	unsigned char out[64];
	int r = gov_xcall_recv(fd, 1, &rep, out, sizeof out, 2000, NULL, 0);
	ok(r == 1 && rep.status == GOV_XCALL_MALFORMED, "a CALL whose body is not a call frame: MALFORMED");
	has_str(rep.text, "frame", "and the reply names what was wrong");
	gov_xcall_init(&h, GOV_XCALL_CALL);
	h.magic = 0x12345678;
	gov_xcall_send(fd, 1, &h, NULL);
	r = gov_xcall_recv(fd, 1, &rep, out, sizeof out, 2000, NULL, 0);
	ok(r == 0 || r == -ECONNRESET, "a frame with a bad magic: the agent drops the link");
	close(fd);
	ok(wait_log(SVC, "xcall frame field magic is wrong", 2000) == 0, "and logs which field was wrong");
	fd = raw_link();
	r = raw_call_lane(fd, 30, GOV_XCALL_LANES, &st);
	ok(r == -999, "a CALL on lane %d (there are %d): the agent drops the link", GOV_XCALL_LANES,
	   GOV_XCALL_LANES);
	close(fd);
	ok(wait_log(SVC, "xcall frame field lane is wrong", 2000) == 0, "and logs that the lane was wrong");
	fd = raw_link();
	ok(fd >= 0 && raw_call(fd, 8, &st) > 0, "the agent still serves links after bad ones");
	close(fd);
	/* an agent of another uid */
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		_exit(raw_link() < 0 ? 0 : 11);
	}
	int wst;
	waitpid(pid, &wst, 0);
	ok(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "a link from another uid is refused (%d)", WEXITSTATUS(wst));
	ok(wait_log(SVC, "an agent of uid 65534 may not call into " SVC, 2000) == 0,
	   "and the refusal is logged with the uid");
	/* a hello naming the tcp protocol on the unix listener */
	fd = harness_edge_connect(SVC);
	gov_xcall_init(&h, GOV_XCALL_HELLO);
	h.proto = GOV_PROTO_TCP;
	gov_xcall_send(fd, 1, &h, NULL);
	r = gov_xcall_recv(fd, 1, &rep, NULL, 0, 2000, NULL, 0);
	ok(r == 1 && rep.type == GOV_XCALL_WELCOME && rep.status != 0, "a hello of the wrong protocol is refused");
	has_str(rep.text, "tcp link cannot come in on the unix listener", "and says why");
	close(fd);
}

/* ---- bad input that never reaches an agent ---- */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

static void bad_exports(void)
{
	char path[512], err[256];
	snprintf(path, sizeof path, "%s/bad.exports", harness_run_dir());
	static const struct { const char *text, *want; } cases[] = {
		{ "x_add\n", "bad.exports:1: expected 'NAME TYPES'" },
		{ "# ok\nx_add lll extra\n", "bad.exports:2: expected 'NAME TYPES'" },
		{ "x_add lQl\n", "x_add: type string \"lQl\" at character 2: not a type code of gov/types.def" },
		{ "x_sum lb\n", "needs a z parameter after it" },
		{ "x_add lvl\n", "v is only a return type" },
		{ "x_add slz\n", "a return type must be a scalar, p or a struct" },
		{ "x_add llllllll\n", "more than 6 parameters" },
		{ "no_such_function_here l\n", "no_such_function_here is not a function of this process" },
		{ "x_add lll\nx_add lll\n", "bad.exports:2: x_add is listed twice" },
		{ "# nothing\n\n", "names no function" },
		{ "x_pt_scale {id{id}i\n", "at character 9: a struct has no closing }" },
		{ "x_pt_scale {}{id}i\n", "a struct needs at least one member" },
		{ "x_pt_scale {io}{id}i\n", "not a struct member code" },
		{ "x_pt_scale {is}{id}i\n", "a returned struct cannot hold a string or buffer" },
		{ "x_msg l{sib}l\n", "at character 6: a b member needs a z member after it" },
		{ "x_msg l{2sibz}l\n", "a string or buffer member (or a struct holding one) cannot be an array" },
		{ "x_pt_scale {0i}{id}i\n", "an array count starts with 1..9" },
		{ "x_pt_scale {5000c}i\n", "an array count is larger than the largest struct" },
		{ "x_pt_scale {600d}i\n", "the struct is larger than 4096 bytes" },
		{ "x_pt_scale c{id}\n", "c and h are struct members only" },
		{ "x_pt_scale l3i\n", "a count or } outside a struct" },
		{ "x_pt_scale {{{{{i}}}}}\n", "nest more than 4 deep" },
		{ "x_pt_scale {iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii}\n", "at most 47 characters" },
	};
	for (size_t i = 0; i < GOV_ARRAY_LEN(cases); i++) {
		write_file(path, cases[i].text);
		err[0] = 0;
		ok(govrt_serve_start(path, err, sizeof err) == -1, "export list %zu refused", i + 1);
		has_str(err, cases[i].want, "export list %zu: the error says where and why", i + 1);
	}
	ok(govrt_serve_start("/nonexistent/x.exports", err, sizeof err) == -1 &&
	   strstr(err, "cannot open the export list"), "a missing export list is refused");
	ok(govrt_served() == 0 && !govrt_serving(), "nothing was started by the refusals");
}

static void bad_rules(void)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "verdicts:\n  - {function: f, action: deny, to: svc}\n", "'to' only goes with action forward" },
		{ "verdicts:\n  - {syscall: getpid, action: forward}\n", "forward applies to a function" },
		{ "verdicts:\n  - {function: f, action: forward, to: 'a b'}\n", "'to' must be 1-63" },
		{ "protocols:\n  - {from: a, to: b, protocol: tcp, address: nocolon}\n",
		  "'address' must be HOST:PORT" },
		{ "verdicts:\n  - {function: f, action: forwardd}\n", "(native, deny, emulate, trace, forward)" },
		{ "resources:\n  - {name: s, type: service, concurrency: 0}\n",
		  "x.yaml:2:43: 'concurrency' must be an integer from 1 to 64 (got '0')" },
		{ "resources:\n  - {name: s, type: service, concurrency: 65}\n",
		  "'concurrency' must be an integer from 1 to 64 (got '65')" },
		{ "resources:\n  - {name: s, type: service, concurrency: many}\n",
		  "'concurrency' must be an integer from 1 to 64 (got 'many')" },
		{ "resources:\n  - {name: s, type: service, concurrency: [2]}\n",
		  "(got 'a list or mapping')" },
	};
	for (size_t i = 0; i < GOV_ARRAY_LEN(cases); i++) {
		struct gov_ruledoc d;
		char err[512] = "";
		ok(gov_ruledoc_parse(cases[i].text, strlen(cases[i].text), "x.yaml", &d, err, sizeof err) < 0,
		   "rule document %zu refused", i + 1);
		has_str(err, cases[i].want, "rule document %zu: says why", i + 1);
	}
	/* and an agent given a forward to nobody answers with EHOSTUNREACH */
}

/* An shm link spoken by hand: HELLO, the link's box passed, WELCOME.
 * Returns the socket (and the box in *box), or -1. */
static int raw_shm_link(struct gov_xcall_box **box)
{
	int fd = harness_edge_connect(SVC), mfd = memfd_create("raw-link", 0);
	if (fd < 0 || mfd < 0 || ftruncate(mfd, sizeof **box) < 0 ||
	    !(*box = gov_xcall_box_map(mfd))) {
		if (fd >= 0)
			close(fd);
		if (mfd >= 0)
			close(mfd);
		return -1;
	}
	struct gov_xcall_hdr h;
	gov_xcall_init(&h, GOV_XCALL_HELLO);
	h.caller_epoch = 778;
	h.proto = GOV_PROTO_SHM;
	strcpy(h.name, APP);
	gov_xcall_send(fd, 1, &h, NULL);
	gov_fd_send(fd, "F", 1, mfd);
	close(mfd);
	if (gov_xcall_recv(fd, 1, &h, NULL, 0, 2000, NULL, 0) != 1 || h.type != GOV_XCALL_WELCOME ||
	    h.status != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Offers a grant whose memfd is mfd on a hand-spoken shm link; the
 * callee agent's answer. */
static int offer(int fd, struct gov_xcall_box *box, int mfd, uint32_t *seen,
		 struct gov_xcall_hdr *rep)
{
	struct gov_xcall_hdr h;
	gov_xcall_init(&h, GOV_XCALL_GRANT);
	h.caller_epoch = 778;
	static uint64_t id = 100;
	h.req_id = ++id;
	gov_fd_send(fd, "F", 1, mfd);
	gov_xcall_box_send(&box->mb[0], &h, NULL);
	return gov_xcall_box_recv(&box->mb[1], seen, fd, 0, 20, 3000, rep, NULL, 0, NULL, 0);
}

/* Bad grants on an shm link: refused, saying why, and nothing handed out. */
static void bad_grants(void)
{
	struct gov_xcall_box *box = NULL;
	int fd = raw_shm_link(&box);
	ok(fd >= 0, "an shm link to the callee's agent, spoken by hand");
	if (fd < 0)
		return;
	uint32_t seen = 0;
	struct gov_xcall_hdr rep;
	long given = log_count(SVC, "event=direct_given");
	int small = memfd_create("not-a-grant", 0);
	ok(small >= 0 && ftruncate(small, 4096) == 0, "a memfd of 4096 bytes");
	int r = offer(fd, box, small, &seen, &rep);
	ok(r == 1 && rep.status == GOV_XCALL_NOT_RUN, "a grant whose memory is the wrong size is refused");
	has_str(r == 1 ? rep.text : "", "not a direct grant", "and the answer says why");
	close(small);

	int other = memfd_create("other-edge", 0);
	struct gov_xcall_direct *d = MAP_FAILED;
	if (other >= 0 && ftruncate(other, sizeof *d) == 0)
		d = mmap(NULL, sizeof *d, PROT_READ | PROT_WRITE, MAP_SHARED, other, 0);
	ok(d != MAP_FAILED, "a memfd the size of a grant");
	if (d == MAP_FAILED)
		return;
	d->magic = GOV_XCALL_DIRECT_MAGIC;
	d->version = GOV_XCALL_DIRECT_VERSION;
	strcpy(d->from, "xc-someone-else");
	strcpy(d->to, SVC);
	r = offer(fd, box, other, &seen, &rep);
	ok(r == 1 && rep.status == GOV_XCALL_NOT_RUN, "a grant naming another caller is refused");
	has_str(r == 1 ? rep.text : "", "names another edge", "and the answer says why");
	ok(d->server_pid == 0, "no serving process took it");
	is_long(log_count(SVC, "event=direct_given"), given, "the callee's agent gave nothing");
	munmap(d, sizeof *d);
	close(other);
	munmap(box, sizeof *box);
	close(fd);
}

/* ---- busy or hung (docs/xcall.md "Busy or hung") ---- */

struct raw_arg {
	uint64_t epoch;
	const struct gov_site *site;
	long arg;
	long r;
	int status;
	long long took;
};

static void *raw_thread(void *p)
{
	struct raw_arg *a = p;
	int fd = raw_link();
	struct gov_call call = { { (uint64_t)a->arg }, 0 };
	long long t0 = now_ms();
	a->r = fd < 0 ? -998 : raw_call_on(fd, a->epoch, 0, 1, a->site, &call, &a->status);
	a->took = now_ms() - t0;
	if (fd >= 0)
		close(fd);
	return NULL;
}

static const struct gov_site slow_site = { .kind = GOV_SITE_CALL, .sysno = -1,
					   .callee = "x_slow", .types = "li" };
static const struct gov_site pid_site = { .kind = GOV_SITE_CALL, .sysno = -1,
					  .callee = "x_pid", .types = "l" };

/* A call through the callee's agent, by hand, on a link of its own. */
static struct raw_arg raw_once(uint64_t epoch, const struct gov_site *site, long arg)
{
	struct raw_arg a = { .epoch = epoch, .site = site, .arg = arg };
	raw_thread(&a);
	return a;
}

static int held(void)
{
	char path[512];
	snprintf(path, sizeof path, "%s/held", harness_run_dir());
	return access(path, F_OK) == 0;
}

/* The callee's agent with a forward timeout of 1000 ms probes a serving
 * process silent for 750: a long direct call (880 ms) with calls the agent
 * brings waiting behind it keeps the process, and every call gets its
 * outcome; a call longer than the timeout fails alone; a stopped process is
 * dropped within the timeout. */
static void busy_or_hung(void)
{
	agent_stop(svc_agent);
	const char *const extra[] = { "--edge-tcp", "127.0.0.1:0", "--forward-timeout-ms", "1000", NULL };
	svc_agent = agent_start(SVC, NULL, extra);
	edge_up(SVC);
	char needle[128];
	snprintf(needle, sizeof needle, "event=server_connected resource=" SVC " pid=%d ", (int)server);
	ok(wait_log(SVC, needle, 5000) == 0, "the serving process connected to a callee agent "
	   "whose forward timeout is 1000 ms");
	use_protocol("shm");
	errno = 0;
	long r3 = c_add(1, 2);
	int e3 = errno;
	is_long(r3, 3, "shm: a call through the agents (errno %d)", r3 == 3 ? 0 : e3);
	ok(direct_in_force(), "and the edge has a direct grant");
	int lost = log_count(SVC, "event=server_lost"), connected = log_count(SVC, "event=server_connected");

	/* a direct call of 880 ms; three calls brought by the callee's agent
	 * wait behind it, past 3/4 of its timeout */
	long before = direct_calls();
	struct slow_arg d = { .ms = 880, .site = c_hold };
	pthread_t dt, rt[3];
	struct raw_arg ra[3];
	pthread_create(&dt, NULL, slow_thread, &d);
	for (long long end = now_ms() + 3000; now_ms() < end && !held();)
		usleep(1000);
	for (int i = 0; i < 3; i++) {
		ra[i] = (struct raw_arg){ .epoch = 9100 + (uint64_t)i, .site = &count_site };
		pthread_create(&rt[i], NULL, raw_thread, &ra[i]);
	}
	pthread_join(dt, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(rt[i], NULL);
	is_long(d.r, 880, "a long direct call (880 ms of a 1000 ms timeout) returns its value");
	ok(direct_calls() > before, "it went direct (%ld)", direct_calls() - before);
	for (int i = 0; i < 3; i++)
		ok(ra[i].status == GOV_XCALL_OK && ra[i].r > 0, "a call the agent brought beside it ran "
		   "(status %d, count %ld, in %lld ms)", ra[i].status, ra[i].r, ra[i].took);
	is_long(log_count(SVC, "event=server_lost"), lost, "the busy serving process was not dropped");
	is_long(log_count(SVC, "event=server_connected"), connected, "nor did it have to reconnect");

	/* a call longer than the timeout fails alone; the next one waits for
	 * its late answer and runs */
	struct raw_arg slow = raw_once(9200, &slow_site, 1300);
	ok(slow.status == GOV_XCALL_UNKNOWN, "a call of 1300 ms brought by the agent: outcome unknown "
	   "(status %d, in %lld ms)", slow.status, slow.took);
	ok(slow.took < 1000, "answered within the 1000 ms timeout (%lld ms)", slow.took);
	struct raw_arg next = raw_once(9201, &pid_site, 0);
	ok(next.status == GOV_XCALL_OK && next.r == server,
	   "the next call runs in the same serving process (status %d, pid %ld)", next.status, next.r);
	ok(wait_log(SVC, "event=server_busy", 100) == 0 && wait_log(SVC, "event=server_late_answer", 100) == 0,
	   "the agent logged the busy process and, later, its late answer");
	is_long(log_count(SVC, "event=server_lost"), lost, "still not dropped");

	/* a stopped process answers no probe: dropped within the timeout */
	kill(server, SIGSTOP);
	ok(wait_stopped(server) == 0, "the serving process is stopped (SIGSTOP: each of its threads)");
	struct raw_arg hung = raw_once(9300, &count_site, 0);
	ok(hung.status == GOV_XCALL_UNKNOWN && hung.r == 0,
	   "a call into a stopped serving process: outcome unknown (status %d)", hung.status);
	ok(hung.took < 1000, "within the timeout (%lld ms)", hung.took);
	snprintf(needle, sizeof needle, "event=server_lost resource=" SVC " pid=%d", (int)server);
	ok(wait_log(SVC, needle, 100) == 0 && wait_log(SVC, "nor to its probe", 100) == 0,
	   "the stopped process was dropped: no answer, nor to its probe");
	kill(server, SIGCONT);
	ok(wait_log_n(SVC, "event=server_connected", connected + 1, 5000) == 0,
	   "it reconnects once it runs again");
	long r = -1;
	for (long long end = now_ms() + 5000; now_ms() < end && (r = c_add(4, 4)) != 8;)
		usleep(20000);
	is_long(r, 8, "and calls work again");
}

/* ---- several calls in one serving process (resources: concurrency:) ---- */

/* Two direct calls at once, each waiting up to 300 ms for the other to
 * run beside it: the most that ran at once (-1 if a call failed). */
static long overlapped(void)
{
	struct slow_arg a = { .ms = 300, .site = c_overlap }, b = a;
	pthread_t ta, tb;
	pthread_create(&ta, NULL, slow_thread, &a);
	pthread_create(&tb, NULL, slow_thread, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	return a.r < 1 || b.r < 1 ? -1 : a.r > b.r ? a.r : b.r;
}

/* overlapped() until it says want, for up to 3 s: a published limit
 * reaches the serving process after the agent's rules revision moves (the
 * agent writes it into the process's mailbox and wakes its probe thread). */
static long overlapped_soon(long want)
{
	long got = overlapped();
	for (long long end = now_ms() + 3000; got != want && now_ms() < end; got = overlapped())
		usleep(20000);
	return got;
}

static void svc_rules(const char *rules)
{
	long rev = agent_stat(SVC, "rules_rev");
	agent_set_rules(svc_agent, SVC, rules);
	for (long long end = now_ms() + 5000; now_ms() < end && agent_stat(SVC, "rules_rev") <= rev;)
		usleep(5000);
}

static void serve_concurrency(void)
{
	static const char plain[] = "resources:\n  - {name: " SVC ", type: service}\n",
			  two[] = "resources:\n  - {name: " SVC ", type: service, concurrency: 2}\n";
	agent_stop(svc_agent);
	int connected = log_count(SVC, "event=server_connected");
	const char *const extra[] = { "--edge-tcp", "127.0.0.1:0", NULL };
	svc_agent = agent_start(SVC, plain, extra);
	edge_up(SVC);
	ok(wait_log_n(SVC, "event=server_connected", connected + 1, 5000) == 0,
	   "the serving process connected to an agent whose rules declare its resource");
	use_protocol("shm");
	is_long(c_add(3, 4), 7, "shm: a call");
	ok(direct_in_force(), "and a direct grant");
	long before = direct_calls();
	is_long(overlapped(), 1, "by default a serving process runs one call at a time "
		"(two direct calls at once)");
	svc_rules(two);
	is_long(overlapped_soon(2), 2, "its resource declared with concurrency: 2, two run at once");
	svc_rules(plain);
	is_long(overlapped_soon(1), 1, "the declaration without it: one at a time again");
	ok(direct_calls() - before >= 6, "all six calls went direct (%ld)", direct_calls() - before);
}

/* Open descriptors, counted without allocating (the caller may have no
 * address space to spare). */
static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* 1 if /proc/self/maps names a mapping of name, read without allocating. */
static int mapped(const char *name)
{
	static char maps[1 << 17];
	int fd = open("/proc/self/maps", O_RDONLY);
	size_t len = 0;
	for (ssize_t n; fd >= 0 && len < sizeof maps - 1 &&
	     (n = read(fd, maps + len, sizeof maps - 1 - len)) > 0;)
		len += (size_t)n;
	if (fd >= 0)
		close(fd);
	maps[len] = 0;
	return strstr(maps, name) != NULL;
}

/* A GRANT whose memfd this process cannot map (child "nomap", its address
 * space limited): its calls keep the agents' path and say why. */
static int nomap_main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (c_add(1, 1) != 2)
		return 2;
	int fds = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	long vm_kb = 0;
	while (f && fgets(line, sizeof line, f))
		sscanf(line, "VmSize: %ld kB", &vm_kb);
	if (f)
		fclose(f);
	/* a grant (over 1 MB) cannot be mapped in what is left */
	struct rlimit rl = { (rlim_t)(vm_kb + 256) * 1024, (rlim_t)(vm_kb + 256) * 1024 };
	if (!vm_kb || sizeof(struct gov_xcall_direct) < 512 * 1024 || setrlimit(RLIMIT_AS, &rl) < 0)
		return 3;
	fds = count_fds();
	printf("ready\n");
	if (read(0, line, 1) != 1)
		return 4;
	long good = 0;
	for (long i = 0; i < 50; i++)
		good += c_add(i, 1) == i + 1;
	int grant = mapped("gov-direct");
	printf("good=%ld mapped=%d fds=%d/%d\n", good, grant, fds, count_fds());
	return good == 50 && !grant && fds == count_fds() ? 0 : 5;
}

static void grant_not_mapped(char *self)
{
	use_protocol("unix");
	int in[2], out[2];
	char err_path[512];
	snprintf(err_path, sizeof err_path, "%s/nomap.err", harness_run_dir());
	if (pipe(in) < 0 || pipe(out) < 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(e, 2);
		execl("/proc/self/exe", self, "nomap", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	char buf[256] = "";
	ssize_t n = read(out[0], buf, sizeof buf - 1);
	ok(n > 0 && strncmp(buf, "ready", 5) == 0, "a caller process whose address space has no "
	   "room for a grant (%.*s)", n > 0 ? (int)n - 1 : 0, buf);
	use_protocol("shm");
	is_long(c_add(2, 3), 5, "shm: a call (this process then gets the grant)");
	ok(granted_soon(), "the edge has a grant, sent to every process of " APP);
	char *text = NULL;
	for (long long end = now_ms() + 5000; now_ms() < end; usleep(20000)) {
		free(text);
		text = read_file(err_path);
		if (text && strstr(text, "not taken"))
			break;
	}
	has_str(text ? text : "", "not taken: cannot map its memory: Cannot allocate memory",
		"the other process logged that it could not map the grant, and why");
	free(text);
	long before = direct_calls();
	ssize_t w = write(in[1], "g", 1);
	(void)w;
	memset(buf, 0, sizeof buf);
	n = read(out[0], buf, sizeof buf - 1);
	int st = -1;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "its 50 calls answered right, with no grant mapped "
	   "and no descriptor left over (%.*s, exit %d)", n > 0 ? (int)n - 1 : 0, buf,
	   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	is_long(direct_calls(), before, "all on the agents' path");
	close(in[1]);
	close(out[0]);
}

/* A callee's agent started with --no-direct gives no grant, and says why. */
static void no_direct(void)
{
	agent_stop(svc_agent);
	const char *const extra[] = { "--edge-tcp", "127.0.0.1:0", "--no-direct", NULL };
	svc_agent = agent_start(SVC, NULL, extra);
	edge_up(SVC);
	use_protocol("shm");
	long r = -1;
	int refused = -1;
	for (long long end = now_ms() + 15000; now_ms() < end && refused; usleep(50000)) {
		r = c_add(20, 22);
		refused = wait_log(APP, "gives no direct grants (--no-direct)", 1);
	}
	is_long(r, 42, "shm calls into a --no-direct agent work");
	ok(refused == 0, "through the agents: the grant was refused, and the caller's agent logged why");
	char *st = stats_of(APP);
	has_str(st, "\"direct_granted\":false", "and the edge has no grant in force");
	free(st);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "serve") == 0)
		return serve_main();
	if (argc > 1 && strcmp(argv[1], "nomap") == 0)
		return nomap_main();
	static const char *const env[] = { "GOV_TIMEOUT_MS=3000", NULL };
	harness_reexec(argv, APP, env);
	snprintf(exports_path, sizeof exports_path, "%s/" SVC ".exports", harness_run_dir());
	write_file(exports_path, exports_text);

	bad_exports();
	bad_rules();
	mailbox_on_one_cpu(50000);
	mailbox_on_one_cpu(0);

	const char *const svc_extra[] = { "--edge-tcp", "127.0.0.1:0", "--resend-keep-s", "2", NULL };
	svc_agent = agent_start(SVC, NULL, svc_extra);
	ok(svc_agent > 0 && edge_up(SVC) == 0, "the callee's agent listens for edges");
	const char *const app_extra[] = { "--forward-timeout-ms", "1000", NULL };
	app_agent = agent_start(APP, rules_for("unix", NULL), app_extra);
	ok(app_agent > 0 && wait_connected(1, 5000) == 0, "this program is connected to its agent");
	server = serving_start(argv[0], SVC, exports_path);

	const char *protos[] = { "unix", "tcp", "msgqueue", "shm" };
	for (size_t i = 0; i < GOV_ARRAY_LEN(protos); i++) {
		if (i)
			use_protocol(protos[i]);
		battery(protos[i]);
	}
	switch_under_load();
	for (size_t i = 0; i < GOV_ARRAY_LEN(protos); i++)
		in_flight(protos[i]);
	direct_grants(argv[0]);
	use_protocol("unix");
	killed_mid_call(argv[0]);
	at_most_once();
	resend_cache();
	bad_grants();
	grant_not_mapped(argv[0]);
	busy_or_hung();
	serve_concurrency();
	no_direct();

	stop(server);
	agent_stop(app_agent);
	agent_stop(svc_agent);
	return done_testing();
}
