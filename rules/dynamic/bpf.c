/* rules/dynamic/bpf.c - eBPF mode: a rule object built with
 * `clang -O2 -target bpf -c` is loaded, verified and JIT-compiled by DPDK's
 * librte_bpf. librte_bpf is opened with dlopen on the first eBPF rule, so a
 * program that never receives one does not carry DPDK (nor pay for its
 * constructors). No EAL initialisation is needed.
 *
 * What librte_bpf's verifier refuses at load (so at publish): any loop
 * (back edge), a memory access outside the context or the stack, an
 * unknown helper, an uninitialised register. What is left for run time: a
 * division by zero (the program stops and returns 0, which dynrt.c counts
 * as a fault) and helpers given bad arguments (dynrt.c). With no loops a run
 * executes at most as many instructions as the program has, so the budget
 * is checked at load: spec.max_insns. Not the fault policy (dynrt.c). */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <rte_bpf.h>
#include "dynrt.h"

static struct {
	pthread_once_t once;
	void *lib;
	char why[256];
	struct rte_bpf *(*elf_load)(const struct rte_bpf_prm *, const char *, const char *);
	void (*destroy)(struct rte_bpf *);
	int (*get_jit)(const struct rte_bpf *, struct rte_bpf_jit *);
	uint64_t (*exec)(const struct rte_bpf *, void *);
	int (*openlog_stream)(FILE *);
	pthread_mutex_t lock; /* the log stream is process-wide */
} lib = { .once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER };

static void open_lib(void)
{
	static const char *const names[] = { "librte_bpf.so.23", "librte_bpf.so" };
	for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib.lib; i++)
		lib.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!lib.lib) {
		snprintf(lib.why, sizeof lib.why, "cannot load librte_bpf (Debian: libdpdk-dev): %s",
			 dlerror());
		return;
	}
	*(void **)&lib.elf_load = dlsym(lib.lib, "rte_bpf_elf_load");
	*(void **)&lib.destroy = dlsym(lib.lib, "rte_bpf_destroy");
	*(void **)&lib.get_jit = dlsym(lib.lib, "rte_bpf_get_jit");
	*(void **)&lib.exec = dlsym(lib.lib, "rte_bpf_exec");
	*(void **)&lib.openlog_stream = dlsym(lib.lib, "rte_openlog_stream");
	if (!lib.elf_load || !lib.destroy || !lib.get_jit || !lib.exec) {
		snprintf(lib.why, sizeof lib.why, "librte_bpf lacks rte_bpf_elf_load and friends");
		dlclose(lib.lib);
		lib.lib = NULL;
	}
}

#define RAW8 { .type = RTE_BPF_ARG_RAW, .size = sizeof(uint64_t) }
#define HELPER(n, fn, na)                                                            \
	{ .name = "gov_" #n, .type = RTE_BPF_XTYPE_FUNC,                               \
	  .func = { .val = (uint64_t(*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t))(void *)fn, \
		    .nb_args = na, .args = { RAW8, RAW8, RAW8 }, .ret = RAW8 } }

static const struct rte_bpf_xsym helpers[] = {
	HELPER(map_lookup, gov_dynh_map_lookup, 3),
	HELPER(map_update, gov_dynh_map_update, 3),
	HELPER(map_delete, gov_dynh_map_delete, 2),
	HELPER(counter_add, gov_dynh_counter_add, 2),
	HELPER(time_ns, gov_dynh_time_ns, 0),
	HELPER(log, gov_dynh_log, 2),
	HELPER(event, gov_dynh_event, 2),
};

/* The verifier's lines, without librte_bpf's chatter about success. */
static void keep_reasons(const char *log, char *err, size_t errlen)
{
	size_t o = strlen(err);
	char *copy = strdup(log ? log : ""), *save = NULL;
	for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
		if (strstr(l, "resolve_xsym") || strstr(l, "successfully") || !*l)
			continue;
		if (o + 3 < errlen)
			o += (size_t)snprintf(err + o, errlen - o, "; %s", l);
	}
	free(copy);
}

/* The gov_rule section of a 64-bit ELF: its instructions, their number in
 * *n; NULL if there is none. librte_bpf checks the rest of the file itself. */
static const struct ebpf_insn *rule_code(const void *obj, size_t len, long *n)
{
	const Elf64_Ehdr *eh = obj;
	if (len < sizeof *eh || eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    eh->e_shoff > len || (len - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum ||
	    eh->e_shstrndx >= eh->e_shnum)
		return NULL;
	const Elf64_Shdr *sh = (const void *)((const char *)obj + eh->e_shoff);
	const Elf64_Shdr *names = &sh[eh->e_shstrndx];
	if (names->sh_offset > len || names->sh_size > len - names->sh_offset)
		return NULL;
	const char *strtab = (const char *)obj + names->sh_offset;
	for (unsigned i = 0; i < eh->e_shnum; i++)
		if (sh[i].sh_name + sizeof "gov_rule" <= names->sh_size &&
		    memcmp(strtab + sh[i].sh_name, "gov_rule", sizeof "gov_rule") == 0) {
			if (sh[i].sh_offset > len || sh[i].sh_size > len - sh[i].sh_offset ||
			    sh[i].sh_offset % 8)
				return NULL;
			*n = (long)(sh[i].sh_size / 8);
			return (const void *)((const char *)obj + sh[i].sh_offset);
		}
	return NULL;
}

/* ---- which words of the context a rule writes ----
 * govrt keeps one context per thread between calls and rewrites only the
 * argument words per call (dispatch.c) — safe only for a rule that writes
 * no read-only field and whose context pointer never leaves it. A data
 * flow over the instructions decides: each register is "not the context",
 * "the context + off", or "maybe the context" (two paths disagree), and
 * anything not understood says no. librte_bpf refuses loops, so passes in
 * order settle quickly: one when every jump goes forward, another for each
 * jump back (clang lays blocks out so without a loop). States only lose
 * precision, so it ends even on a loop. */
enum { R_NOT, R_CTX, R_MAYBE };
struct reg_state {
	uint8_t kind[EBPF_REG_NUM];
	int16_t off[EBPF_REG_NUM];
};

/* Returns whether *to changed. */
static int merge_into(struct reg_state *to, uint8_t *seen, const struct reg_state *from)
{
	if (!*seen) {
		*to = *from;
		*seen = 1;
		return 1;
	}
	int changed = 0;
	for (int r = 0; r < EBPF_REG_NUM; r++)
		if (to->kind[r] != from->kind[r] || (to->kind[r] == R_CTX && to->off[r] != from->off[r])) {
			uint8_t k = to->kind[r] == R_NOT && from->kind[r] == R_NOT ? R_NOT : R_MAYBE;
			changed |= k != to->kind[r];
			to->kind[r] = k;
		}
	return changed;
}

static const unsigned size_of[4] = { [BPF_W >> 3] = 4, [BPF_H >> 3] = 2, [BPF_B >> 3] = 1, [EBPF_DW >> 3] = 8 };

#define ARGS_OFF ((long)offsetof(struct gov_dyn_ctx, args))
#define ARGS_END (ARGS_OFF + (long)sizeof(((struct gov_dyn_ctx *)0)->args))

/* The argument words that size bytes at ctx + off overlap, as bits. */
static uint8_t arg_words(long off, unsigned size)
{
	uint8_t m = 0;
	for (long w = 0; w < GOV_DYN_MAX_ARGS; w++)
		if (off < ARGS_OFF + 8 * (w + 1) && off + (long)size > ARGS_OFF + 8 * w)
			m |= (uint8_t)(1u << w);
	return m;
}

/* A store of size bytes at ctx + off: the answer words it touches into
 * *words, or -1 if it touches a read-only field (the arguments are
 * rewritten on every call, so writing them is fine: *args then gets every
 * argument bit, so that govrt copies them all in on every call and a
 * word written past the site's arguments never outlives its run). */
static int note_store(long off, unsigned size, uint32_t *words, uint8_t *args)
{
	const long answer = offsetof(struct gov_dyn_ctx, value);
	if (off < 0 || off + (long)size > (long)sizeof(struct gov_dyn_ctx))
		return -1;
	if (off >= ARGS_OFF && off + size <= ARGS_END) {
		*args = GOV_DYN_ALL_ARGS;
		return 0;
	}
	if (off < answer)
		return -1;
	for (long w = off / 8; w <= (off + size - 1) / 8; w++)
		*words |= 1u << w;
	return 0;
}

/* Instruction i on the state it is reached with: the states of its
 * successors merged (*changed set if one moved), the stores it makes
 * noted in *words, the argument words it reads or writes in *args.
 * Returns 0, or -1 if the rule must take the full path. */
static int step(const struct ebpf_insn *ins, long i, long n, struct reg_state *st, uint8_t *seen,
		uint32_t *words, uint8_t *args, int *changed)
{
	struct reg_state s = st[i];
	const struct ebpf_insn *in = &ins[i];
	uint8_t c = in->code, d = in->dst_reg, sr = in->src_reg;
	long next = i + 1;
	if (d >= EBPF_REG_NUM || sr >= EBPF_REG_NUM)
		return -1;
	switch (BPF_CLASS(c)) {
	case BPF_LD: /* the 16-byte immediate load: a number or a map, never the context */
		if (c == (BPF_LD | BPF_IMM | EBPF_DW))
			next = i + 2;
		s.kind[d] = R_NOT;
		break;
	case BPF_LDX:
		/* through "maybe": any argument, as far as this scan knows */
		if (s.kind[sr] == R_MAYBE)
			*args = GOV_DYN_ALL_ARGS;
		else if (s.kind[sr] == R_CTX)
			*args |= arg_words((long)s.off[sr] + in->off, size_of[BPF_SIZE(c) >> 3]);
		s.kind[d] = R_NOT; /* the context holds no pointer to itself */
		break;
	case BPF_ST:
	case BPF_STX:
		if (BPF_CLASS(c) == BPF_STX && s.kind[sr] != R_NOT)
			return -1; /* the context pointer stored somewhere */
		if (BPF_MODE(c) == EBPF_XADD && in->imm != BPF_ADD)
			return -1; /* an atomic that loads back into a register */
		if (s.kind[d] == R_MAYBE)
			return -1;
		if (s.kind[d] == R_CTX && note_store((long)s.off[d] + in->off, size_of[BPF_SIZE(c) >> 3], words, args))
			return -1;
		break;
	case BPF_ALU:
	case EBPF_ALU64:
		if (BPF_OP(c) == EBPF_MOV && BPF_SRC(c) == BPF_X && BPF_CLASS(c) == EBPF_ALU64) {
			s.kind[d] = s.kind[sr];
			s.off[d] = s.off[sr];
		} else if (BPF_SRC(c) == BPF_X && s.kind[sr] != R_NOT) {
			return -1; /* the context pointer as an operand */
		} else if (s.kind[d] == R_NOT || BPF_OP(c) == EBPF_MOV) {
			s.kind[d] = R_NOT;
		} else if (s.kind[d] == R_CTX && BPF_CLASS(c) == EBPF_ALU64 && BPF_SRC(c) == BPF_K &&
			   (BPF_OP(c) == BPF_ADD || BPF_OP(c) == BPF_SUB) && in->imm > -4096 && in->imm < 4096) {
			s.off[d] = (int16_t)(s.off[d] + (BPF_OP(c) == BPF_ADD ? in->imm : -in->imm));
		} else {
			return -1; /* anything else done to it: not followed */
		}
		break;
	case BPF_JMP:
	case 0x06: /* JMP32 */
		if (BPF_OP(c) == EBPF_EXIT)
			return 0;
		if (BPF_OP(c) == EBPF_CALL) {
			/* a helper; clang marks calls to external names src_reg 1
			 * (EBPF_PSEUDO_CALL) too, for librte_bpf to relocate. A
			 * callee, helper or not, reaches the context only
			 * through r1..r5 */
			for (int r = EBPF_REG_1; r <= EBPF_REG_5; r++)
				if (s.kind[r] != R_NOT)
					return -1;
			for (int r = EBPF_REG_0; r <= EBPF_REG_5; r++)
				s.kind[r] = R_NOT;
			break;
		}
		long to = i + 1 + in->off;
		if (to < 0 || to >= n)
			return -1;
		*changed |= merge_into(&st[to], &seen[to], &s);
		if (BPF_OP(c) == BPF_JA)
			return 0;
		break;
	}
	if (next >= n)
		return -1; /* runs off the end */
	*changed |= merge_into(&st[next], &seen[next], &s);
	return 0;
}

int gov_dyn_bpf_ctx_writes(const void *code, long n, uint32_t *words, uint8_t *args)
{
	*words = 0;
	*args = 0;
	struct reg_state *st = calloc((size_t)n + 1, sizeof *st);
	uint8_t *seen = calloc((size_t)n + 1, 1);
	int r = st && seen && n > 0 ? 0 : -1, changed = 1;
	if (r == 0) {
		seen[0] = 1;
		st[0].kind[EBPF_REG_1] = R_CTX;
	}
	for (long pass = 0; r == 0 && changed; pass++) {
		changed = 0;
		if (pass > n)
			r = -1;
		/* unseen: unreachable, or the second half of a 16-byte load */
		for (long i = 0; r == 0 && i < n; i++)
			if (seen[i])
				r = step(code, i, n, st, seen, words, args, &changed);
	}
	free(st);
	free(seen);
	if (r) {
		*words = 0;
		*args = GOV_DYN_ALL_ARGS;
	}
	return r;
}

static void *bpf_load(const void *obj, size_t len, const struct gov_dyn_spec *spec,
		      char *err, size_t errlen)
{
	pthread_once(&lib.once, open_lib);
	if (!lib.lib) {
		snprintf(err, errlen, "rule %s: %s", spec->name, lib.why);
		return NULL;
	}
	if (len < 64 || memcmp(obj, "\177ELF", 4) != 0) {
		snprintf(err, errlen, "rule %s: not an ELF object (build it with clang -O2 -target bpf -c)",
			 spec->name);
		return NULL;
	}
	long n = -1;
	const struct ebpf_insn *code = rule_code(obj, len, &n);
	if (!code) {
		snprintf(err, errlen, "rule %s: the object has no gov_rule section (use GOV_RULE from gov/dynrule.h)",
			 spec->name);
		return NULL;
	}
	if (spec->max_insns && n > (long)spec->max_insns) {
		snprintf(err, errlen, "rule %s: %ld instructions, over its budget of %u (max_insns)",
			 spec->name, n, spec->max_insns);
		return NULL;
	}
	/* rte_bpf_elf_load reads a file: hand it the bytes through a memfd */
	int fd = memfd_create("gov-bpf-rule", MFD_CLOEXEC);
	if (fd < 0 || write(fd, obj, len) != (ssize_t)len) {
		snprintf(err, errlen, "rule %s: cannot stage the object: %m", spec->name);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	struct rte_bpf_prm prm = {
		.xsym = helpers, .nb_xsym = sizeof helpers / sizeof helpers[0],
		.prog_arg = { .type = RTE_BPF_ARG_PTR, .size = sizeof(struct gov_dyn_ctx) },
	};
	char *log = NULL;
	size_t loglen = 0;
	pthread_mutex_lock(&lib.lock);
	FILE *ls = lib.openlog_stream ? open_memstream(&log, &loglen) : NULL;
	if (ls)
		lib.openlog_stream(ls);
	struct rte_bpf *b = lib.elf_load(&prm, path, "gov_rule");
	if (ls) {
		lib.openlog_stream(NULL);
		fclose(ls);
	}
	pthread_mutex_unlock(&lib.lock);
	close(fd);
	struct rte_bpf_jit jit = { 0 };
	if (!b) {
		snprintf(err, errlen, "rule %s: refused by the eBPF verifier", spec->name);
		keep_reasons(log, err, errlen);
	} else if (lib.get_jit(b, &jit) != 0 || !jit.func) {
		snprintf(err, errlen, "rule %s: librte_bpf could not JIT-compile it", spec->name);
		lib.destroy(b);
		b = NULL;
	}
	free(log);
	if (b && gov_dyn_cur.rule) {
		struct gov_dynrule *r = gov_dyn_cur.rule;
		r->fast = jit.func;
		uint32_t words;
		r->ctx_kept = gov_dyn_bpf_ctx_writes(code, n, &words, &r->ctx_args) == 0;
		/* a faulted run's fail outcome writes err and value too (dynrt.c) */
		r->ctx_answers = words | GOV_DYN_WORD(err) | GOV_DYN_WORD(value);
		r->kept = r->ctx_kept ? r->fast : NULL;
	}
	return b;
}

static uint64_t bpf_run(struct gov_dynrule *r, struct gov_dyn_ctx *ctx)
{
	return lib.exec(r->impl, ctx);
}

static void bpf_destroy(void *impl)
{
	lib.destroy(impl);
}

const struct gov_dyn_mode_ops gov_dyn_ebpf_ops = {
	.name = "ebpf", .load = bpf_load, .run = bpf_run, .destroy = bpf_destroy,
};
