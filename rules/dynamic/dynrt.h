/* rules/dynamic/dynrt.h - running dynamic rules on the host: a loaded
 * rule, its maps, counters and event ring, the helpers it may call, and the
 * one function that runs it safely (budget, faults, fail outcome, disabling).
 *
 * Used by govrt (placement process, eBPF only), govagent (both modes) and
 * govctl (verifying at publish). The modes live in bpf.c (librte_bpf,
 * loaded with dlopen on first use) and wasm.c (wasm2c, agent only). Not the
 * rule interface (gov/dynrule.h) nor the rule document (ruledoc.c). */
#ifndef GOV_RULES_DYNRT_H
#define GOV_RULES_DYNRT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "gov/dynrule.h"

#define GOV_DYN_MAP_CAP 1024    /* keys per map */
#define GOV_DYN_EVENTS 256      /* entries of a rule's event ring */

struct gov_dyn_map {
	atomic_flag lock;
	unsigned used;
	struct { uint64_t key, value; uint8_t full; } *slot; /* GOV_DYN_MAP_CAP, on first use */
};

struct gov_dyn_event {
	uint64_t time_ns, site_id, a, b;
};

struct gov_dynrule;

/* A mode: how code is loaded, run and freed. run returns the rule's raw
 * result (0 = it faulted). */
struct gov_dyn_mode_ops {
	const char *name;
	void *(*load)(const void *obj, size_t len, const struct gov_dyn_spec *spec,
		      char *err, size_t errlen);
	uint64_t (*run)(struct gov_dynrule *r, struct gov_dyn_ctx *ctx);
	void (*destroy)(void *impl);
};

/* Every run reads the first block, written only at load and when the rule
 * is disabled; runs and helpers write the rest (shared by every thread
 * running the rule). The two never share a cache line, so that threads
 * counting and updating maps do not take the first block's line from a
 * thread that is only running the rule (gov_dynrule_load allocates it
 * aligned). */
#define GOV_DYN_LINE 64
struct gov_dynrule {
	uint64_t (*fast)(void *ctx);     /* eBPF: the JIT-compiled code, else NULL */
	/* fast while the rule may run on govrt's kept context (ctx_kept) and
	 * is not disabled, else NULL: the one word govrt's kept path tests */
	uint64_t (*_Atomic kept)(void *ctx);
	atomic_int disabled;
	/* eBPF, found at load (gov_dyn_bpf_ctx_writes): the rule writes no
	 * read-only field of the context and its pointer never leaves the
	 * rule, so govrt may keep one context per thread between calls; and
	 * which 8-byte words of the answer it may write (bit i = bytes
	 * 8i..8i+7), the ones reset after a run. */
	uint8_t ctx_kept;
	/* the argument words the rule may read or write (bit i = args[i]);
	 * all six for a rule that writes one or the scan cannot follow */
	uint8_t ctx_args;
	uint32_t ctx_answers;
	const struct gov_dyn_mode_ops *ops;
	void *impl;
	uint64_t hash;                   /* of the object's bytes */
	struct gov_dyn_spec spec;
	/* written by runs and helpers */
	_Alignas(GOV_DYN_LINE) atomic_ullong runs, faults;
	atomic_ullong event_head;
	atomic_ullong counters[GOV_DYN_COUNTERS];
	struct gov_dyn_map maps[GOV_DYN_MAPS];
	struct gov_dyn_event events[GOV_DYN_EVENTS];
};

extern const struct gov_dyn_mode_ops gov_dyn_ebpf_ops; /* bpf.c */
/* The bit of ctx_answers for a field of struct gov_dyn_ctx. */
#define GOV_DYN_WORD(field) (1u << offsetof(struct gov_dyn_ctx, field) / 8)
#define GOV_DYN_ALL_ARGS ((uint8_t)((1u << GOV_DYN_MAX_ARGS) - 1))
/* A data flow over n eBPF instructions (struct ebpf_insn): 0 if the
 * program writes only the arguments and the answer of its context (the
 * answer words it may write in *words) and never lets the context pointer
 * go (to a helper, to memory, through arithmetic not followed); else -1
 * and *words = 0. *args: the argument words it may read (bit i =
 * args[i]), GOV_DYN_ALL_ARGS if it writes one or on -1. */
int gov_dyn_bpf_ctx_writes(const void *code, long n, uint32_t *words, uint8_t *args);
/* wasm.c's gov_dyn_wasm_ops: declared weak where it is used (govrt lacks it) */

/* Loads obj (an eBPF ELF object or a wasm module, by spec->mode) and
 * checks it: the verifier's or validator's reason goes in err. Returns a
 * rule, or NULL. ops may be NULL: the mode's default (wasm needs wasm.c). */
struct gov_dynrule *gov_dynrule_load(const struct gov_dyn_spec *spec, const void *obj,
				     size_t len, char *err, size_t errlen);
void gov_dynrule_free(struct gov_dynrule *r);


/* The helpers, for the modes to register (eBPF: as external symbols;
 * wasm: as imports). They act on the rule the calling thread is running. */
uint64_t gov_dynh_map_lookup(uint64_t map, uint64_t key, uint64_t dflt);
uint64_t gov_dynh_map_update(uint64_t map, uint64_t key, uint64_t value);
uint64_t gov_dynh_map_delete(uint64_t map, uint64_t key);
uint64_t gov_dynh_counter_add(uint64_t counter, uint64_t delta);
uint64_t gov_dynh_time_ns(void);
uint64_t gov_dynh_log(uint64_t code, uint64_t value);
uint64_t gov_dynh_event(uint64_t a, uint64_t b);

/* The rule a helper acts on, and its fault flag: per thread. */
struct gov_dyn_running {
	struct gov_dynrule *rule;
	struct gov_dyn_ctx *ctx;
	int fault;                 /* set by a helper given a bad argument */
	const char *why;
};
/* initial-exec: inside libgovrt.so a general-dynamic TLS access would be a
 * call to __tls_get_addr on every run */
extern __thread struct gov_dyn_running gov_dyn_cur __attribute__((tls_model("initial-exec")));

/* Where gov_log's lines and fault reports go: one logfmt line without its
 * newline (default: stderr). govagent points it at its log. */
extern void (*gov_dyn_log_hook)(const char *line);

/* FNV-1a 64 of bytes: the object's identity (cache keys, "changed?"). */
uint64_t gov_dyn_hash(const void *p, size_t len);

/* Runs r on ctx. Returns the action to take (never GOV_DYN_FAULT): on a
 * fault, a run over budget or a bad helper argument, the fail outcome,
 * with ctx->err / ctx->value set from the spec; a disabled rule always
 * answers its fail outcome. Never lets the fault reach the caller.
 * Inline for JIT-compiled code that returns a good action (the dispatch
 * path of govrt); everything else goes through gov_dynrule_run_slow. */
int gov_dynrule_run_slow(struct gov_dynrule *r, struct gov_dyn_ctx *ctx);
/* A run that ended with result a (or a helper's fault): counted, logged,
 * maybe disabling r; returns the fail outcome. */
int gov_dynrule_fault(struct gov_dynrule *r, struct gov_dyn_ctx *ctx, uint64_t a,
		      const struct gov_dyn_running *done);
static inline __attribute__((always_inline)) int
gov_dynrule_run_(struct gov_dynrule *r, struct gov_dyn_ctx *ctx, int count)
{
	if (__builtin_expect(!r->fast || atomic_load_explicit(&r->disabled, memory_order_relaxed), 0))
		return gov_dynrule_run_slow(r, ctx);
	struct gov_dyn_running *cur = &gov_dyn_cur;
	cur->rule = r;
	cur->ctx = ctx;
	cur->fault = 0;
	uint64_t a = r->fast(ctx);
	cur->rule = NULL;
	/* a statistic, not a lock: racing threads may lose a count, but no
	 * locked instruction on every run */
	if (count)
		atomic_store_explicit(&r->runs, atomic_load_explicit(&r->runs, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	if (__builtin_expect(a == GOV_DYN_FAULT || a >= GOV_DYN_NACTIONS || cur->fault, 0))
		return gov_dynrule_fault(r, ctx, a, cur);
	return (int)a;
}
static inline int gov_dynrule_run(struct gov_dynrule *r, struct gov_dyn_ctx *ctx)
{
	return gov_dynrule_run_(r, ctx, 1);
}
/* The same without counting the run in r->runs: for govrt, where nobody
 * reads that count (govctl trace reads the agent's rules) and every thread
 * running the rule would write its cache line on every call. */
static inline int gov_dynrule_run_uncounted(struct gov_dynrule *r, struct gov_dyn_ctx *ctx)
{
	return gov_dynrule_run_(r, ctx, 0);
}

/* Appends the rule's counts, counters and events as a JSON object to buf
 * (at most cap bytes); returns the length written. */
size_t gov_dynrule_json(const struct gov_dynrule *r, char *buf, size_t cap);

#endif
