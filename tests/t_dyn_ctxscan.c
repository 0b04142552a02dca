/* tests/t_dyn_ctxscan.c - the load-time scan that says whether govrt may
 * keep an eBPF rule's context between calls (bpf.c,
 * gov_dyn_bpf_ctx_writes; docs/dynrules.md): every shipped rule and test
 * rule as built, then hand-written programs for each way a context
 * pointer can write a read-only field or get away (a copy, an offset, a
 * helper, memory, arithmetic not followed, two paths that disagree), and
 * the argument words a rule reads (govrt copies in only when it reads one
 * of the site's). No agent: the scan is pure, the objects are loaded by
 * librte_bpf. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dpdk/bpf_def.h> /* struct ebpf_insn and the opcodes, no DPDK flags needed */
#include "../rules/dynamic/dynrt.h"
#include "harness.h"
#include "tap.h"

#define OFF(f) ((int16_t)offsetof(struct gov_dyn_ctx, f))
#define FAILW (GOV_DYN_WORD(err) | GOV_DYN_WORD(value))

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0;
	*len = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (*len == cap && !(buf = realloc(buf, cap = cap * 2 + 4096)))
			break;
		size_t n = fread(buf + *len, 1, cap - *len, f);
		if (!n)
			break;
		*len += n;
	}
	fclose(f);
	return buf;
}

static struct gov_dynrule *load(const char *rel)
{
	char path[512], err[512] = "";
	snprintf(path, sizeof path, "%s/%s", DYN_OBJS, rel);
	size_t len = 0;
	char *obj = slurp(path, &len);
	struct gov_dyn_spec spec = { .mode = GOV_DYN_EBPF, .placement = GOV_DYN_IN_PROCESS };
	snprintf(spec.name, sizeof spec.name, "%s", rel);
	struct gov_dynrule *r = obj ? gov_dynrule_load(&spec, obj, len, err, sizeof err) : NULL;
	if (!r)
		diag("%s: %s", rel, obj ? err : "cannot read");
	free(obj);
	return r;
}

#define ALL GOV_DYN_ALL_ARGS
static void object(const char *rel, int kept, uint32_t words, uint8_t args)
{
	struct gov_dynrule *r = load(rel);
	ok(r && r->ctx_kept == kept && r->ctx_answers == (words | FAILW) && r->ctx_args == args &&
	   (r->kept != NULL) == kept,
	   "%s: %s (answer words %#x, argument words %#x)", rel, kept ? "kept context" : "full path",
	   r ? r->ctx_answers : 0, r ? r->ctx_args : 0);
	gov_dynrule_free(r);
}

#define I(c, d, s, o, i) { .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) }
#define EXIT_1 I(EBPF_ALU64 | EBPF_MOV | BPF_K, 0, 0, 0, 1), I(BPF_JMP | EBPF_EXIT, 0, 0, 0, 0)
#define STW(d, off) I(BPF_ST | BPF_MEM | BPF_W, d, 0, off, 5)   /* *(u32 *)(d + off) = 5 */
#define MOVX(d, s) I(EBPF_ALU64 | EBPF_MOV | BPF_X, d, s, 0, 0)
#define ADDK(d, k) I(EBPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, k)

/* want_args -1: not checked; the full path always has every word */
static void prog(const struct ebpf_insn *p, long n, int want_ok, uint32_t want_words, int want_args,
		 const char *what)
{
	uint32_t words = 0xdead;
	uint8_t args = 0xee;
	int r = gov_dyn_bpf_ctx_writes(p, n, &words, &args);
	if (!want_ok)
		want_args = ALL;
	ok(r == (want_ok ? 0 : -1) && words == want_words && (want_args < 0 || args == want_args),
	   "%s: %s (words %#x, argument words %#x)", what, want_ok ? "kept" : "full path", words, args);
}
#define PROG(want_ok, words, what, ...) do {                                    \
		const struct ebpf_insn p_[] = { __VA_ARGS__ };                  \
		prog(p_, (long)(sizeof p_ / sizeof p_[0]), want_ok, words, -1, what); \
	} while (0)
/* the same, the argument words it reads checked too */
#define PROGA(want_ok, words, args, what, ...) do {                             \
		const struct ebpf_insn p_[] = { __VA_ARGS__ };                  \
		prog(p_, (long)(sizeof p_ / sizeof p_[0]), want_ok, words, args, what); \
	} while (0)
#define LDX(size, d, s, off) I(BPF_LDX | BPF_MEM | (size), d, s, off, 0)

int main(void)
{
	/* as built: the shipped rules and the test rules */
	object("rules/deny/deny.bpf.o", 1, GOV_DYN_WORD(err), 1 << 2);
	object("rules/trace/trace.bpf.o", 1, 0, 1 << 0);
	object("rules/cfs/cfs.bpf.o", 1, GOV_DYN_WORD(entity) | GOV_DYN_WORD(weight), 0);
	object("rules/tasklet/tasklet.bpf.o", 1, GOV_DYN_WORD(tasklet), 1 << 0);
	/* clang spills its context pointer to the stack: not followed */
	object("rules/ratelimit/ratelimit.bpf.o", 0, 0, ALL);
	object("tests/dyn/modargs.bpf.o", 1, GOV_DYN_WORD(err) | GOV_DYN_WORD(value), ALL); /* writes one */
	object("tests/dyn/ctxid.bpf.o", 1,
	       GOV_DYN_WORD(value) | GOV_DYN_WORD(err) | GOV_DYN_WORD(entity) | GOV_DYN_WORD(weight) |
	       GOV_DYN_WORD(tasklet), ALL);
	object("tests/dyn/ctxpid.bpf.o", 0, 0, ALL);
	object("tests/dyn/deny_full.bpf.o", 0, 0, ALL); /* bench/rules B's full-path baseline */
	object("tests/dyn/noargs.bpf.o", 1, 0, 0);
	object("tests/dyn/argpeek.bpf.o", 1, GOV_DYN_WORD(value), 1 << 2);

	/* by hand */
	PROGA(1, 0, 0, "reads only", I(BPF_LDX | BPF_MEM | BPF_W, 2, 1, OFF(pid), 0), EXIT_1);
	PROGA(1, 0, 1 << 1, "reads args[1]", LDX(EBPF_DW, 2, 1, OFF(args) + 8), EXIT_1);
	PROGA(1, 0, 1 << 5, "reads the high half of args[5] through a copy moved by an offset",
	      MOVX(6, 1), ADDK(6, OFF(args)), LDX(BPF_W, 2, 6, 44), EXIT_1);
	PROGA(1, 0, 0, "reads caller_id, right after args[5]", LDX(BPF_W, 2, 1, OFF(caller_id)), EXIT_1);
	PROGA(1, 0, 1 << 0, "reads nargs and args[0]", LDX(BPF_W, 2, 1, OFF(nargs)),
	      LDX(BPF_B, 3, 1, OFF(args)), EXIT_1);
	PROGA(1, 0, ALL, "a load through two paths that disagree: any argument",
	      I(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 1, 0), ADDK(1, 8), LDX(BPF_W, 3, 1, 0), EXIT_1);
	PROGA(1, 0, ALL, "a store to args[1]: every argument copied in",
	      STW(1, OFF(args) + 8), EXIT_1);
	PROGA(1, 0, 0, "a load through the stack pointer, not the context",
	      LDX(EBPF_DW, 2, 10, -8), EXIT_1);
	PROG(1, GOV_DYN_WORD(err), "a store to err", STW(1, OFF(err)), EXIT_1);
	PROG(1, 0, "a store to an argument", STW(1, OFF(args) + 16), EXIT_1);
	PROG(0, 0, "a store to pid", STW(1, OFF(pid)), EXIT_1);
	PROG(0, 0, "a store to time_ns", STW(1, OFF(time_ns)), EXIT_1);
	PROG(0, 0, "a store to site_id through a copy", MOVX(6, 1), STW(6, OFF(site_id)), EXIT_1);
	PROG(0, 0, "a store to tid through a copy moved by an offset", MOVX(6, 1), ADDK(6, OFF(pid)),
	     STW(6, 4), EXIT_1);
	PROG(1, GOV_DYN_WORD(slots), "a store to slots through a pointer to the answer",
	     MOVX(6, 1), ADDK(6, OFF(value)), STW(6, OFF(slots) - OFF(value)), EXIT_1);
	PROG(0, 0, "a store spanning the last argument and caller_id",
	     I(BPF_ST | BPF_MEM | EBPF_DW, 1, 0, OFF(args) + 44, 0), EXIT_1);
	PROG(0, 0, "a store past the context", STW(1, (int16_t)sizeof(struct gov_dyn_ctx)), EXIT_1);
	PROG(0, 0, "the context pointer handed to a helper", I(BPF_JMP | EBPF_CALL, 0, 0, 0, 1), EXIT_1);
	PROG(1, 0, "a helper called with the pointer moved out of r1..r5",
	     MOVX(6, 1), I(EBPF_ALU64 | EBPF_MOV | BPF_K, 1, 0, 0, 0), I(BPF_JMP | EBPF_CALL, 0, 0, 0, 1),
	     EXIT_1);
	PROG(0, 0, "a copy in a callee-saved register survives a helper call",
	     MOVX(6, 1), I(EBPF_ALU64 | EBPF_MOV | BPF_K, 1, 0, 0, 0), I(BPF_JMP | EBPF_CALL, 0, 0, 0, 1),
	     STW(6, OFF(pid)), EXIT_1);
	PROG(1, 0, "r1 after a helper call is not the context",
	     MOVX(6, 1), I(EBPF_ALU64 | EBPF_MOV | BPF_K, 1, 0, 0, 0), I(BPF_JMP | EBPF_CALL, 0, 0, 0, 1),
	     STW(1, OFF(pid)), EXIT_1);
	PROG(0, 0, "the context pointer stored to the stack",
	     I(BPF_STX | BPF_MEM | EBPF_DW, 10, 1, -8, 0), EXIT_1);
	PROG(0, 0, "arithmetic with a register",
	     MOVX(6, 1), I(EBPF_ALU64 | BPF_ADD | BPF_X, 6, 2, 0, 0), STW(6, 0), EXIT_1);
	PROG(0, 0, "the pointer as an operand", I(EBPF_ALU64 | BPF_ADD | BPF_X, 2, 1, 0, 0), EXIT_1);
	PROG(0, 0, "a 32-bit copy of the pointer", I(BPF_ALU | EBPF_MOV | BPF_X, 2, 1, 0, 0), EXIT_1);
	PROG(1, 0, "the pointer overwritten, then stored through",
	     I(EBPF_ALU64 | EBPF_MOV | BPF_K, 1, 0, 0, 0), STW(10, -8), EXIT_1);
	PROG(0, 0, "two paths: the context on one, a number on the other, then a store",
	     I(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 1, 0), /* if r2 == 0 skip the next */
	     I(EBPF_ALU64 | EBPF_MOV | BPF_K, 1, 0, 0, 0),
	     STW(1, OFF(err)), EXIT_1);
	PROG(0, 0, "two paths: the context at two offsets, then a store",
	     I(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 1, 0),
	     ADDK(1, 8),
	     STW(1, OFF(err)), EXIT_1);
	PROG(1, GOV_DYN_WORD(err) | GOV_DYN_WORD(value), "two paths that agree, each with its own store",
	     I(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 2, 0),
	     STW(1, OFF(err)), I(BPF_JMP | BPF_JA, 0, 0, 1, 0),
	     STW(1, OFF(value)), EXIT_1);
	PROG(1, 0, "a store to pid on a path never taken (after an unconditional jump)",
	     I(BPF_JMP | BPF_JA, 0, 0, 1, 0), STW(1, OFF(pid)), EXIT_1);
	PROG(1, 0, "a 16-byte immediate load is two slots",
	     I(BPF_LD | BPF_IMM | EBPF_DW, 1, 0, 0, 0), I(0, 0, 0, 0, 0), STW(1, 0), EXIT_1);
	PROG(0, 0, "the context pointer handed to a call marked src_reg 1 (clang's, for helpers)",
	     MOVX(3, 1), I(BPF_JMP | EBPF_CALL, 0, EBPF_PSEUDO_CALL, 0, -1), EXIT_1);
	PROG(1, GOV_DYN_WORD(err), "a jump back that is no loop (as clang lays blocks out)",
	     I(BPF_JMP | BPF_JA, 0, 0, 3, 0),         /* to 4 */
	     STW(1, OFF(err)), EXIT_1,                 /* 1..3 */
	     I(BPF_JMP | BPF_JA, 0, 0, -4, 0));        /* 4: back to 1 */
	PROG(0, 0, "a loop moving the pointer",
	     ADDK(1, 8), I(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, -2, 0), STW(1, OFF(value)), EXIT_1);
	PROG(0, 0, "a jump past the end", I(BPF_JMP | BPF_JA, 0, 0, 5, 0), EXIT_1);
	PROG(0, 0, "running off the end", STW(1, OFF(err)));
	PROG(0, 0, "a register number out of range", I(EBPF_ALU64 | EBPF_MOV | BPF_K, 12, 0, 0, 0), EXIT_1);
	PROG(0, 0, "an atomic add to pid", I(BPF_STX | EBPF_XADD | BPF_W, 1, 2, OFF(pid), 0), EXIT_1);
	PROG(1, GOV_DYN_WORD(weight), "an atomic add to weight",
	     I(EBPF_ALU64 | EBPF_MOV | BPF_K, 2, 0, 0, 1),
	     I(BPF_STX | EBPF_XADD | BPF_W, 1, 2, OFF(weight), 0), EXIT_1);
	return done_testing();
}
