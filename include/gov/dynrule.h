/* gov/dynrule.h - the interface of a dynamic rule: the context it sees,
 * the actions it returns and the helpers it may call.
 *
 * One header for every side: a rule written in eBPF-C (clang -target bpf)
 * or wasm-C (clang --target=wasm32) includes it to write the rule; govrt,
 * govagent and govctl include it to run one. It is not the rule document
 * (docs/rules.md says how a rule is published and attached) and it says
 * nothing about how a mode loads its code (rules/dynamic/).
 *
 *     #include "gov/dynrule.h"
 *
 *     GOV_RULE(deny_big_writes)
 *     {
 *             if (ctx->sysno == 1 && ctx->args[2] > 4096) {
 *                     ctx->err = 27;          // EFBIG
 *                     return GOV_DYN_DENY;
 *             }
 *             return GOV_DYN_NATIVE;
 *     }
 *
 * A rule is one function of one argument, the context, and returns an
 * action (enum gov_dyn_action). Every action is non-zero: 0 means the rule
 * faulted (librte_bpf's JIT and interpreter return 0 when a division by zero
 * stops the program), so the runtime applies the rule's fail outcome.
 * Everything is a fixed-size integer, so the layout is the same for BPF,
 * wasm32 and x86-64. Documented in docs/dynrules.md.
 */
#ifndef GOV_DYNRULE_H
#define GOV_DYNRULE_H

#include <stdint.h>

#define GOV_DYN_MAX_ARGS 6
#define GOV_DYN_MAPS 8      /* maps per rule: gov_map_* take 0..7 */
#define GOV_DYN_COUNTERS 16 /* counters per rule: gov_counter_add takes 0..15 */

/* What the rule tells the runtime to do with the call. */
enum gov_dyn_action {
	GOV_DYN_FAULT = 0,       /* never returned on purpose: the rule faulted */
	GOV_DYN_NATIVE = 1,      /* run the original call */
	GOV_DYN_DENY = 2,        /* fail with ctx->err (default EPERM) */
	GOV_DYN_EMULATE = 3,     /* do not run it; return ctx->value */
	GOV_DYN_FORWARD = 4,     /* run it in the process of the resource
				  * ctx->forward_to names (docs/dynrules.md) */
	GOV_DYN_NATIVE_ARGS = 5, /* run the original with ctx->args as changed */
	GOV_DYN_SCHEDULE = 6,    /* run it under the cfs run queue of this rule:
				  * as ctx->entity with ctx->weight, at most
				  * ctx->slots at once (docs/cfs.md) */
	GOV_DYN_DEFER = 7,       /* do not run it now: the agent queues it on
				  * the tasklet ctx->tasklet names and the call
				  * returns 0 (docs/tasklet.md); decided in the
				  * agent (placement process asks the agent) */
	GOV_DYN_NACTIONS
};

/* The call, as the rule sees it. The first block is read-only by
 * convention (changes are ignored but for args with NATIVE_ARGS); the last
 * one is the rule's answer. */
struct gov_dyn_ctx {
	uint64_t site_id;       /* the site's stable id (gov/abi.h) */
	uint32_t kind;          /* 1 = call to a function, 2 = syscall */
	int32_t sysno;          /* the syscall the site makes or wraps, or -1 */
	uint32_t func_id;       /* gov_dyn_id(callee name): compare with GOV_DYN_ID("unlink") */
	uint32_t nargs;
	uint64_t args[GOV_DYN_MAX_ARGS]; /* argument words (pointers as numbers) */
	uint32_t caller_id;     /* gov_dyn_id(the calling process's resource) */
	uint32_t callee_id;     /* gov_dyn_id(the callee's resource), 0 = none */
	uint32_t pid, tid;
	uint64_t time_ns;       /* CLOCK_MONOTONIC when the call was made */
	/* the rule's answer */
	int64_t value;          /* EMULATE: the value returned */
	int32_t err;            /* DENY: the errno */
	uint32_t forward_to;    /* FORWARD: GOV_DYN_ID(a resource), 0 = where a forward verdict goes */
	/* SCHEDULE's answer (docs/cfs.md); the runtime sets entity to the
	 * calling thread (pid << 32 | tid) and the others to 0 before the run */
	uint64_t entity;        /* who is charged for the call's time */
	uint32_t weight;        /* its weight, 1..1048576; 0 = 1024 */
	uint32_t slots;         /* calls of this rule's queue running at once; 0 = online CPUs */
	/* DEFER's answer (docs/tasklet.md) */
	uint32_t tasklet;       /* GOV_DYN_ID(the tasklet's name) */
	uint32_t reserved_;
};

/* The id of a name: 32-bit FNV-1a. The macro folds to a constant for a
 * string literal of up to 24 characters (longer ones are cut there), so a
 * rule can compare ctx->func_id without loops or strings, which eBPF lacks. */
static inline uint32_t gov_dyn_id(const char *s)
{
	uint32_t h = 2166136261u;
	for (int i = 0; s[i] && i < 24; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}
/* each step names h once (x ^ 0) * 1 past the end keeps the macro linear */
#define GOV_DYN_H_(s, i, h) (((h) ^ ((i) < sizeof(s) - 1 ? (uint8_t)(s)[(i) < sizeof(s) ? (i) : 0] : 0u)) * \
			     ((i) < sizeof(s) - 1 ? 16777619u : 1u))
#define GOV_DYN_H4_(s, i, h) GOV_DYN_H_(s, i + 3, GOV_DYN_H_(s, i + 2, GOV_DYN_H_(s, i + 1, GOV_DYN_H_(s, i, h))))
#define GOV_DYN_H12_(s, i, h) GOV_DYN_H4_(s, i + 8, GOV_DYN_H4_(s, i + 4, GOV_DYN_H4_(s, i, h)))
#define GOV_DYN_ID(s) ((uint32_t)GOV_DYN_H12_(s, 12, GOV_DYN_H12_(s, 0, 2166136261u)))

/* ---- helpers: the only way out of a rule ----
 * Declared once, below (rule side); the host implements them in
 * rules/dynamic/dynrt.c (gov_dynh_*). Every argument and result is a 64-bit
 * word, so one declaration serves both modes. A helper given a bad
 * argument (a map or counter number out of range) marks the run as
 * faulted: the rule's fail outcome applies, and the fault counts toward
 * disabling it.
 *   gov_map_lookup(map, key, dflt)   the value stored under key, else dflt
 *   gov_map_update(map, key, value)  0, or -1 if the map is full
 *   gov_map_delete(map, key)         0, or -1 if key was not there
 *   gov_counter_add(counter, delta)  the counter's new value
 *   gov_time_ns()                    CLOCK_MONOTONIC now, in ns
 *   gov_log(code, value)             one log line: rule, code, value
 *   gov_event(a, b)                  appends {time, site, a, b} to the event ring */

/* ---- host side: how a rule was published (the rule document's
 * `dynamic:` entry, docs/dynrules.md), as the agent passes it on ---- */
enum gov_dyn_mode { GOV_DYN_EBPF = 1, GOV_DYN_WASM = 2 };
enum gov_dyn_placement { GOV_DYN_IN_AGENT = 1, GOV_DYN_IN_PROCESS = 2 };

struct gov_dyn_spec {
	char name[64];          /* "RULE" or "RULE/ENTRY" */
	uint8_t mode;           /* enum gov_dyn_mode */
	uint8_t placement;      /* enum gov_dyn_placement */
	uint8_t fail_action;    /* GOV_DYN_NATIVE, _DENY or _EMULATE */
	uint8_t reserved;
	int32_t fail_err;       /* DENY: errno */
	int64_t fail_value;     /* EMULATE: value */
	uint32_t max_faults;    /* disabled after this many faults; 0 = never */
	uint32_t max_insns;     /* eBPF: longest program accepted */
	uint32_t budget_us;     /* wasm: longest run */
	uint32_t reserved2;
};

#if !defined(__bpf__) && !defined(__wasm__)
/* A SCHEDULE answered by a rule in the agent travels back to the program
 * as a reply with action GOV_ACT_RULE, value = the entity and err = this
 * word: the weight (1..1048576, 21 bits) | the slots (0..1023) << 21. */
static inline int32_t gov_cfs_pack(uint32_t weight, uint32_t slots)
{
	if (weight > 1048576u)
		weight = 1048576u;
	if (slots > 1023u)
		slots = 1023u;
	return (int32_t)(weight | slots << 21);
}
static inline void gov_cfs_unpack(int32_t word, uint32_t *weight, uint32_t *slots)
{
	*weight = (uint32_t)word & 0x1fffffu;
	*slots = (uint32_t)word >> 21 & 0x3ffu;
}
#endif

#if defined(__bpf__) || defined(__wasm__)
/* ---- rule side: per-mode glue ---- */
#if defined(__bpf__)
/* librte_bpf resolves calls to these names (relocations of the object)
 * against the helpers the runtime registers; the entry point goes into the
 * section the loader asks for, gov_rule. */
#define GOV_HELPER_(name) extern
#define GOV_RULE(name) \
	__attribute__((section("gov_rule"), used)) uint64_t name(struct gov_dyn_ctx *ctx)
#else
/* wasm: helpers are imports of module "gov"; the entry point is the export
 * gov_rule, and the context lives in the rule's own linear memory at the
 * address gov_ctx returns (the host builds the call there and reads the
 * answer there). */
#define GOV_HELPER_(name) __attribute__((import_module("gov"), import_name(#name))) extern
#define GOV_RULE(name)                                                             \
	static uint64_t name(struct gov_dyn_ctx *ctx);                              \
	static struct gov_dyn_ctx gov_ctx_buf_;                                     \
	__attribute__((export_name("gov_ctx"))) uint32_t gov_ctx_(void)             \
	{ return (uint32_t)(uintptr_t)&gov_ctx_buf_; }                              \
	__attribute__((export_name("gov_rule"))) uint64_t gov_rule_(void)           \
	{ return name(&gov_ctx_buf_); }                                             \
	static uint64_t name(struct gov_dyn_ctx *ctx)
#endif
GOV_HELPER_(map_lookup) uint64_t gov_map_lookup(uint64_t map, uint64_t key, uint64_t dflt);
GOV_HELPER_(map_update) uint64_t gov_map_update(uint64_t map, uint64_t key, uint64_t value);
GOV_HELPER_(map_delete) uint64_t gov_map_delete(uint64_t map, uint64_t key);
GOV_HELPER_(counter_add) uint64_t gov_counter_add(uint64_t counter, uint64_t delta);
GOV_HELPER_(time_ns) uint64_t gov_time_ns(void);
GOV_HELPER_(log) uint64_t gov_log(uint64_t code, uint64_t value);
GOV_HELPER_(event) uint64_t gov_event(uint64_t a, uint64_t b);
#undef GOV_HELPER_
#endif /* rule side */

#endif
