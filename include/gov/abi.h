/* gov/abi.h - the site table: what an instrumented module tells govrt.
 *
 * Every intercepted site (a call to a chosen function, a call to a libc
 * syscall wrapper, a raw syscall instruction) is described by one
 * `struct gov_site` placed in the section named GOV_SITES_SECTION. The
 * linker concatenates those records and defines __start_gov_sites and
 * __stop_gov_sites around them, so a module's table needs no list kept by
 * hand; each module registers its table once, from a constructor, with
 * __govrt_register_module(). The same records are readable from the ELF file
 * without running it (govctl learns a binary's references that way).
 *
 * This header is the contract shared by the compiler plugins, the rewriter,
 * the hand-written GOV_CALL macros (gov/govrt.h) and govrt. It is not the
 * public API of govrt; see gov/govrt.h for that. Documented in docs/abi.md.
 */
#ifndef GOV_ABI_H
#define GOV_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* govrt builds with hidden visibility; what it exports is marked GOV_API. */
#define GOV_API __attribute__((visibility("default")))

#define GOV_ABI_VERSION 1
#define GOV_SITES_SECTION "gov_sites"
#define GOV_RESOURCE_SECTION "gov_resource"
#define GOV_MAX_ARGS 6     /* a site passes at most this many arguments */
#define GOV_NAME_MAX 64    /* callee and resource names, NUL included */

enum gov_site_kind {
	GOV_SITE_CALL = 1,    /* a call to a named function */
	GOV_SITE_SYSCALL = 2, /* a raw syscall instruction or syscall(2) */
};

/* How a site reports an error that govrt returns instead of running it. */
enum gov_ret_conv {
	GOV_RET_LIBC = 0,       /* return -1 (or NULL for a pointer) and set errno */
	GOV_RET_RAW = 1,        /* return -errno, as the syscall instruction does */
	GOV_RET_ERRNUM = 2,     /* return the error number itself, errno untouched
				 * (posix_fadvise, pthread_kill, clock_nanosleep) */
	GOV_RET_MAP_FAILED = 3, /* return (void *)-1 and set errno (mmap, shmat, sbrk) */
};

/* Flags of include/gov/libc.def's entries. */
enum gov_libc_flags {
	GOV_LIBC_VARIADIC = 1,  /* the function is variadic; types lists the fixed
				 * parameters and the documented extra ones */
};

/* The verdict byte: the only thing the fast path reads. */
enum gov_verdict {
	GOV_VERDICT_NATIVE = 0,   /* call the original directly */
	GOV_VERDICT_DISPATCH = 1, /* call __govrt_dispatch() */
};

/* What happens to a governed call. Shared by rules, the decision table in
 * the shared region, the wire reply and govrt. */
#define GOV_ACTIONS(X)                                                        \
	X(NATIVE, 0, "native", "run the original call")                        \
	X(DENY, 1, "deny", "do not run it; fail with the rule's errno")         \
	X(EMULATE, 2, "emulate", "do not run it; return the rule's value")      \
	X(TRACE, 3, "trace", "count it at the agent, then run it")              \
	X(FORWARD, 4, "forward", "run it in the resource that exports it, through the agents") \
	X(RULE, 5, "rule", "run dynamic rule number `value` (gov/dynrule.h)")

enum gov_action {
#define GOV_ACTION_ENUM(name, code, word, doc) GOV_ACT_##name = code,
	GOV_ACTIONS(GOV_ACTION_ENUM)
#undef GOV_ACTION_ENUM
	GOV_ACT_COUNT
};

/* Type codes (gov/types.def). */
enum gov_type {
#define GOV_TYPE(code, name, doc, travel) GOV_T_##name = code,
#include "gov/types.def"
#undef GOV_TYPE
};

/* One site. The first block is written at build time; the last three
 * fields belong to govrt and start as zero. */
struct gov_site {
	uint64_t id;         /* stable id; 0 = let govrt derive it (gov_site_id) */
	uint8_t kind;        /* enum gov_site_kind */
	uint8_t ret_conv;    /* enum gov_ret_conv */
	uint8_t nparams;     /* == strlen(types) - 1 */
	uint8_t reserved;
	int32_t sysno;       /* the syscall this site makes or wraps, or -1 */
	const char *caller;  /* enclosing function */
	const char *callee;  /* function name; for a raw syscall, its name */
	const char *types;   /* return type code then parameter codes */
	const char *file;
	uint32_t line;
	/* owned by govrt: */
	volatile uint8_t verdict; /* enum gov_verdict */
	uint8_t pad[3];
	uint32_t decision;   /* index of the site's decision in govrt */
	uint32_t pad2;
};

/* One module's table, passed to __govrt_register_module(). */
struct gov_module {
	uint32_t abi_version;      /* GOV_ABI_VERSION of the module */
	uint32_t reserved;
	struct gov_site *start, *stop;
	const char *resource;      /* resource named at build time, or NULL */
};

/* Arguments of one governed call, as the site hands them to govrt. Each
 * argument is stored bit for bit in the low bytes of its 64-bit word (an int
 * in the low 4, a double in all 8); the site's type code says how to read it.
 * `ret` follows the same rule for the return value. */
struct gov_call {
	uint64_t arg[GOV_MAX_ARGS];
	int64_t ret;              /* the value the site returns when told to */
};

/* What __govrt_dispatch tells the site to do. */
enum gov_dispatch_result {
	GOV_RUN_NATIVE = 0,  /* call the original with call->arg (maybe changed) */
	GOV_RUN_RETURN = 1,  /* do not call it; return call->ret (errno is set) */
};

GOV_API void __govrt_register_module(const struct gov_module *module);
GOV_API int __govrt_dispatch(struct gov_site *site, struct gov_call *call);

/* The stable id of a site: FNV-1a over "file:line:caller:callee". Used by
 * govrt for sites emitted with id 0, and by tools reading tables from ELF. */
static inline uint64_t gov_site_id(const char *file, uint32_t line,
				   const char *caller, const char *callee)
{
	uint64_t h = 1469598103934665603ULL;
	const char *parts[3] = { file, caller, callee };
	char num[16];
	int n = 0;
	do num[n++] = (char)('0' + line % 10); while ((line /= 10) && n < 15);
	for (int i = 0; i < 3; i++) {
		for (const char *c = parts[i] ? parts[i] : ""; *c; c++)
			h = (h ^ (uint8_t)*c) * 1099511628211ULL;
		h = (h ^ (uint8_t)':') * 1099511628211ULL;
		if (i == 0)
			for (int k = n - 1; k >= 0; k--)
				h = (h ^ (uint8_t)num[k]) * 1099511628211ULL;
	}
	return h;
}

#ifdef __cplusplus
}
#endif
#endif
