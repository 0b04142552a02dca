/* gov/govrt.h - govrt's public API: declaring governed sites by hand, and
 * asking govrt how it is doing.
 *
 * The compiler plugins and the rewriter emit sites for you. This header lets
 * C code declare them by hand, the way USDT probes are declared:
 *
 *     #define GOV_RESOURCE_NAME "billing"    // optional; else GOV_RESOURCE
 *     #include <gov/govrt.h>
 *     ...
 *     n = GOV_CALL("lpz", send_invoice, buf, len);   // long send_invoice(void *, size_t)
 *     GOV_CALL_VOID("vi", flush_queue, 3);          // void flush_queue(int)
 *     pid = GOV_SYSCALL(SYS_getppid);                // raw syscall, -errno convention
 *
 * The first argument is the site's type string (gov/types.def): the return
 * type code followed by one code per parameter; the compiler checks that it
 * has as many parameter codes as the call has arguments. An ungoverned site
 * costs one load and one predicted branch. Link with -lgovrt (pkg-config
 * govrt). Build with GNU C (gcc or clang): the macros use statement
 * expressions and __typeof__.
 */
#ifndef GOV_GOVRT_H
#define GOV_GOVRT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "gov/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- asking govrt ---- */

struct govrt_stats {
	uint64_t dispatched;  /* calls that reached __govrt_dispatch */
	uint64_t denied;      /* answered DENY (by the table or the agent) */
	uint64_t emulated;    /* answered EMULATE */
	uint64_t agent_calls; /* round trips to the agent that got an answer */
	uint64_t fail_open;   /* calls that needed the agent and ran natively */
	uint64_t fail_closed; /* calls that needed the agent and got the errno */
	uint64_t timeouts;    /* of those, because the agent did not answer in time */
	uint64_t malformed;   /* requests the agent refused as malformed */
	uint64_t slot_waits;  /* calls that found every slot taken and waited */
	uint64_t connects;    /* successful connections to the agent */
	uint64_t table_rev;   /* rule revision of the decision table in force */
	/* Exhaustive syscalls (GOV_SYSCALLS, runtime/README.md): syscalls by
	 * the path that brought them to govrt, and the sites of each path. */
	uint64_t sys_disk;    /* from sites of a binary rewritten on disk */
	uint64_t sys_load;    /* from sites rewritten in memory at load time */
	uint64_t sys_lazy;    /* from sites patched after their first trap */
	uint64_t sys_sud;     /* trapped by Syscall User Dispatch */
	uint64_t sites_sud;   /* distinct sites Syscall User Dispatch has seen */
	uint64_t sites_lazy;  /* of those, patched in memory */
	uint64_t sites_load;  /* sites rewritten in memory at load time */
	uint64_t sites_load_left; /* syscall instructions left to SUD at load time */
};

/* Fills *out with the process's counters (summed over threads). */
GOV_API void govrt_stats(struct govrt_stats *out);

/* 1 while connected to an agent, else 0. */
GOV_API int govrt_connected(void);

/* Waits until the decision table of revision >= rev is in force or
 * timeout_ms passes. Returns 0, or -1 on timeout. For tests and tools. */
GOV_API int govrt_wait_table(uint64_t rev, int timeout_ms);

/* Number of slots this process's threads hold right now (0 when no call is
 * in flight). For tests of slot reclamation. */
GOV_API unsigned govrt_slots_held(void);

/* ---- serving exported functions (docs/xcall.md) ---- */

/* Serves this process's exported functions to its resource's agent, so that
 * other resources can call them: reads the export list at exports_path
 * (NULL: $GOV_EXPORTS; one function a line, `NAME TYPES`, then optionally a
 * TAB and its prototype), finds each function (dlsym: link the executable
 * with -rdynamic) and starts a thread that answers calls, reconnecting when
 * the agent restarts. Returns 0, or -1 with FILE:LINE and why in err and
 * nothing started. */
GOV_API int govrt_serve_start(const char *exports_path, char *err, size_t errlen);
/* Calls served so far; of them, those a caller's govrt brought straight
 * through a direct grant (docs/xcall.md "Direct calls"); and 1 while the
 * serving thread is connected. */
GOV_API uint64_t govrt_served(void);
GOV_API uint64_t govrt_served_direct(void);
GOV_API int govrt_serving(void);

/* ---- tasklets (docs/tasklet.md) ---- */

/* Asks this process's agent to queue a call fn(arg) under tasklet name and
 * returns at once: the agent runs the queued calls later on a process of
 * this resource that serves fn (govrt_serve_start), one at a time per name
 * in the order scheduled, different names at the same time. fn is an
 * exported function `long fn(long)` (export type "ll") that the rules
 * declare exported by this resource (`resources:` ... `exports:`); what it
 * returns is not seen. Returns 0, or -1 with errno: EINVAL (name is not
 * 1-63 of [A-Za-z0-9._-], or fn is empty or 64 bytes or more), ENOTCONN
 * (no agent, or it did not answer), ENOENT (this resource exports no fn),
 * EAGAIN (the tasklet's queue is full), ECANCELED (the tasklet is disabled,
 * govctl tasklet disable), ENOMEM (the agent cannot queue). */
GOV_API int govrt_tasklet_schedule(const char *name, const char *fn, long arg);

/* ---- declaring sites by hand ---- */

#ifndef GOV_RESOURCE_NAME
#define GOV_RESOURCE_NAME 0
#endif

/* Every translation unit that includes this header registers its module's
 * site table from a constructor; govrt ignores repeats of the same table. */
extern struct gov_site __start_gov_sites[] __attribute__((weak, visibility("hidden")));
extern struct gov_site __stop_gov_sites[] __attribute__((weak, visibility("hidden")));
__attribute__((constructor, used)) static void gov__register_module(void)
{
	static const struct gov_module module = {
		GOV_ABI_VERSION, 0, __start_gov_sites, __stop_gov_sites,
		GOV_RESOURCE_NAME,
	};
	__govrt_register_module(&module);
}

#define GOV__SITE(kind_, sysno_, callee_, types_, conv_)                      \
	static struct gov_site gov__site                                      \
		__attribute__((section(GOV_SITES_SECTION), used, aligned(8))) = { \
		.id = 0, .kind = (kind_), .ret_conv = (conv_),                \
		.nparams = sizeof(types_) - 2, .sysno = (sysno_),             \
		.caller = __func__, .callee = (callee_), .types = (types_),   \
		.file = __FILE__, .line = __LINE__,                           \
	}

/* Argument count, 0 to 6. */
#define GOV__N(...) GOV__N_(0, ##__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0)
#define GOV__N_(z, a, b, c, d, e, f, n, ...) n
#define GOV__CAT(a, b) GOV__CAT_(a, b)
#define GOV__CAT_(a, b) a##b

/* A value to its 64-bit word and back, bit for bit (see struct gov_call). */
#define GOV__U64(x) ({ __typeof__((x) + 0) gov__v = (x); uint64_t gov__u = 0; \
	memcpy(&gov__u, &gov__v, sizeof gov__v); gov__u; })
#define GOV__FROM(x, w) ({ __typeof__((x) + 0) gov__v; \
	memcpy(&gov__v, &(w), sizeof gov__v); gov__v; })

#define GOV__PACK0()
#define GOV__PACK1(a) GOV__U64(a)
#define GOV__PACK2(a, b) GOV__PACK1(a), GOV__U64(b)
#define GOV__PACK3(a, b, c) GOV__PACK2(a, b), GOV__U64(c)
#define GOV__PACK4(a, b, c, d) GOV__PACK3(a, b, c), GOV__U64(d)
#define GOV__PACK5(a, b, c, d, e) GOV__PACK4(a, b, c, d), GOV__U64(e)
#define GOV__PACK6(a, b, c, d, e, f) GOV__PACK5(a, b, c, d, e), GOV__U64(f)
#define GOV__UNPACK0(w)
#define GOV__UNPACK1(w, a) GOV__FROM(a, w[0])
#define GOV__UNPACK2(w, a, b) GOV__UNPACK1(w, a), GOV__FROM(b, w[1])
#define GOV__UNPACK3(w, a, b, c) GOV__UNPACK2(w, a, b), GOV__FROM(c, w[2])
#define GOV__UNPACK4(w, a, b, c, d) GOV__UNPACK3(w, a, b, c), GOV__FROM(d, w[3])
#define GOV__UNPACK5(w, a, b, c, d, e) GOV__UNPACK4(w, a, b, c, d), GOV__FROM(e, w[4])
#define GOV__UNPACK6(w, a, b, c, d, e, f) GOV__UNPACK5(w, a, b, c, d, e), GOV__FROM(f, w[5])
#define GOV__PACK(...) GOV__CAT(GOV__PACK, GOV__N(__VA_ARGS__))(__VA_ARGS__)
#define GOV__UNPACK(w, ...) GOV__CAT(GOV__UNPACK, GOV__N(__VA_ARGS__))(w, ##__VA_ARGS__)

#define GOV__CHECK_TYPES(types, ...)                                          \
	_Static_assert(sizeof(types) - 2 == GOV__N(__VA_ARGS__),              \
		       "type string needs a return code plus one code per argument")

/* r = fn(args...) as a governed call site. */
#define GOV_CALL(types, fn, ...) ({                                           \
	GOV__CHECK_TYPES(types, ##__VA_ARGS__);                               \
	GOV__SITE(GOV_SITE_CALL, -1, #fn, types, GOV_RET_LIBC);               \
	__typeof__(fn(__VA_ARGS__)) gov__r;                                   \
	if (__builtin_expect(!gov__site.verdict, 1)) {                        \
		gov__r = fn(__VA_ARGS__);                                     \
	} else {                                                              \
		struct gov_call gov__c = { { GOV__PACK(__VA_ARGS__) }, 0 };   \
		if (__govrt_dispatch(&gov__site, &gov__c) == GOV_RUN_NATIVE)  \
			gov__r = fn(GOV__UNPACK(gov__c.arg, ##__VA_ARGS__));  \
		else                                                          \
			gov__r = GOV__FROM(gov__r, gov__c.ret);               \
	}                                                                     \
	gov__r; })

/* fn(args...) for a function returning void. */
#define GOV_CALL_VOID(types, fn, ...) do {                                    \
	GOV__CHECK_TYPES(types, ##__VA_ARGS__);                               \
	GOV__SITE(GOV_SITE_CALL, -1, #fn, types, GOV_RET_LIBC);               \
	if (__builtin_expect(!gov__site.verdict, 1)) {                        \
		fn(__VA_ARGS__);                                              \
	} else {                                                              \
		struct gov_call gov__c = { { GOV__PACK(__VA_ARGS__) }, 0 };   \
		if (__govrt_dispatch(&gov__site, &gov__c) == GOV_RUN_NATIVE)  \
			fn(GOV__UNPACK(gov__c.arg, ##__VA_ARGS__));           \
	}                                                                     \
} while (0)

/* The raw syscall instruction, -errno convention. */
static inline long gov_raw_syscall(long nr, long a, long b, long c, long d,
				   long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* syscall number nr with up to 6 long arguments, as a governed syscall site;
 * returns what the syscall instruction returns (-errno on error). */
#define GOV_SYSCALL(nr, ...) ({                                               \
	GOV__SITE(GOV_SITE_SYSCALL, (nr), 0,                                  \
		  GOV__CAT(GOV__SYSTYPES, GOV__N(__VA_ARGS__)), GOV_RET_RAW);   \
	long gov__r;                                                          \
	if (__builtin_expect(!gov__site.verdict, 1)) {                        \
		gov__r = gov_raw_syscall((nr), GOV__CAT(GOV__SYSARGS,         \
				GOV__N(__VA_ARGS__))(__VA_ARGS__));           \
	} else {                                                              \
		struct gov_call gov__c = { { GOV__PACK(__VA_ARGS__) }, 0 };   \
		if (__govrt_dispatch(&gov__site, &gov__c) == GOV_RUN_NATIVE)  \
			gov__r = gov_raw_syscall((nr), (long)gov__c.arg[0],   \
				(long)gov__c.arg[1], (long)gov__c.arg[2],     \
				(long)gov__c.arg[3], (long)gov__c.arg[4],     \
				(long)gov__c.arg[5]);                         \
		else                                                          \
			gov__r = (long)gov__c.ret;                            \
	}                                                                     \
	gov__r; })
#define GOV__SYSARGS0() 0, 0, 0, 0, 0, 0
#define GOV__SYSARGS1(a) (long)(a), 0, 0, 0, 0, 0
#define GOV__SYSARGS2(a, b) (long)(a), (long)(b), 0, 0, 0, 0
#define GOV__SYSARGS3(a, b, c) (long)(a), (long)(b), (long)(c), 0, 0, 0
#define GOV__SYSARGS4(a, b, c, d) (long)(a), (long)(b), (long)(c), (long)(d), 0, 0
#define GOV__SYSARGS5(a, b, c, d, e) (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0
#define GOV__SYSARGS6(a, b, c, d, e, f) (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f)
#define GOV__SYSTYPES0 "l"
#define GOV__SYSTYPES1 "ll"
#define GOV__SYSTYPES2 "lll"
#define GOV__SYSTYPES3 "llll"
#define GOV__SYSTYPES4 "lllll"
#define GOV__SYSTYPES5 "llllll"
#define GOV__SYSTYPES6 "lllllll"

#ifdef __cplusplus
}
#endif
#endif
