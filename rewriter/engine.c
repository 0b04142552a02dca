/* rewriter/engine.c - the rewriting engine (API and rules in engine.h).
 *
 * Two passes over the range. The first sweeps it linearly by instruction
 * length (insnlen.c) and classifies each instruction from its bytes:
 * syscall, direct branch (whose target becomes a known jump target), call,
 * end of a straight line (ret, jmp). The second looks at each syscall and
 * each direct call to a chosen address, reads the syscall number from a
 * `mov $N,%eax` before it (capstone's register access lists say what else
 * writes eax), and picks the patch window; every instruction a window
 * would move must decode to the same length with capstone. gre_emit writes
 * the trampoline from the bytes alone.
 *
 * Not here: anything about files (main.c, elfout.c) or about applying a
 * patch to live code (govrt's business). */
#include <stdlib.h>
#include <string.h>
#include <capstone/capstone.h>
#include "gov/abi.h"
#include "engine.h"

/* What an instruction is, as far as moving it goes. */
enum cls {
	C_PLAIN,    /* moves as is (rip-relative operands fixed up by gre_emit) */
	C_SYSCALL,
	C_SYSENTER,
	C_INT80,
	C_JMP,      /* jmp rel8/rel32: movable, ends a straight line */
	C_JCC,      /* jcc rel8/rel32: movable */
	C_CALL,     /* call rel32 */
	C_END,      /* ret, indirect jmp, ud2, hlt: movable, ends a straight line */
	C_FIXED,    /* never moved: loop/jrcxz, indirect call, 16-bit branch */
	C_BAD,      /* a byte that did not decode */
};

struct insn {
	uint32_t off;     /* from in->addr */
	uint8_t len;
	uint8_t cls;
	uint8_t desync;   /* decoded after undecodable bytes, before a known target */
	uint8_t op;       /* offset of the opcode byte (after prefixes) */
	int32_t rel;      /* C_JMP, C_JCC, C_CALL: branch displacement */
};

struct scan {
	const struct gre_input *in;
	struct insn *ins;
	size_t nins, cap;
	uint64_t *tg;     /* the caller's targets in the range, sorted */
	size_t ntg;
	uint8_t *tbits;   /* one bit per byte of the range: a known jump target */
	uint64_t *calls;  /* in->calls, sorted */
	csh cs;           /* capstone, with detail */
};

static const char *const reason_text[] = {
#define GRE_REASON_TEXT(name, text) text,
	GRE_REASONS(GRE_REASON_TEXT)
#undef GRE_REASON_TEXT
};
static const char *const reason_word[] = {
#define GRE_REASON_WORD(name, text) #name,
	GRE_REASONS(GRE_REASON_WORD)
#undef GRE_REASON_WORD
};

const char *gre_reason_text(int r)
{
	return r >= 0 && r < GRE_NREASONS ? reason_text[r] : "?";
}

const char *gre_reason_word(int r)
{
	return r >= 0 && r < GRE_NREASONS ? reason_word[r] : "?";
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int has_u64(const uint64_t *v, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] == x)
			return 1;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return (int32_t)v;
}

static void wr32(uint8_t *p, int32_t v)
{
	memcpy(p, &v, 4);
}

/* Classifies one decoded instruction from its bytes. Branch prefixes that
 * change nothing in 64-bit code (bnd f2, hints 2e/3e) are allowed; 66 on a
 * branch (a 16-bit target on some CPUs) is not moved. */
static void classify(const uint8_t *p, struct insn *ins)
{
	int i = 0, opsize = 0;
	for (; i < ins->len; i++) {
		uint8_t b = p[i];
		if (b == 0x66)
			opsize = 1;
		else if (b == 0xf3 || b == 0xf2 || b == 0x2e || b == 0x3e || b == 0x26 || b == 0x36 ||
			 b == 0x64 || b == 0x65 || b == 0x67 || b == 0xf0)
			;
		else if ((b & 0xf0) == 0x40 && i + 1 < ins->len)
			; /* REX */
		else
			break;
	}
	ins->op = (uint8_t)i;
	ins->cls = C_PLAIN;
	if (i >= ins->len)
		return;
	const uint8_t *o = p + i;
	int left = ins->len - i;
	int branch = 0;
	if (o[0] == 0x0f && left >= 2) {
		if (o[1] == 0x05)
			ins->cls = C_SYSCALL;
		else if (o[1] == 0x34)
			ins->cls = C_SYSENTER;
		else if (o[1] == 0x0b)
			ins->cls = C_END;
		else if ((o[1] & 0xf0) == 0x80 && left == 6)
			ins->cls = C_JCC, ins->rel = rd32(o + 2), branch = 1;
	} else if (o[0] == 0xcd && left == 2 && o[1] == 0x80) {
		ins->cls = C_INT80;
	} else if ((o[0] & 0xf0) == 0x70 && left == 2) {
		ins->cls = C_JCC, ins->rel = (int8_t)o[1], branch = 1;
	} else if (o[0] == 0xeb && left == 2) {
		ins->cls = C_JMP, ins->rel = (int8_t)o[1], branch = 1;
	} else if (o[0] == 0xe9 && left == 5) {
		ins->cls = C_JMP, ins->rel = rd32(o + 1), branch = 1;
	} else if (o[0] == 0xe8 && left == 5) {
		ins->cls = C_CALL, ins->rel = rd32(o + 1), branch = 1;
	} else if (o[0] >= 0xe0 && o[0] <= 0xe3) {
		ins->cls = C_FIXED;
	} else if (o[0] == 0xc3 || o[0] == 0xc2 || o[0] == 0xf4 || o[0] == 0xcc) {
		ins->cls = C_END;
	} else if (o[0] == 0xff && left >= 2) {
		int reg = (o[1] >> 3) & 7;
		if (reg == 2 || reg == 3)
			ins->cls = C_FIXED; /* indirect call: its return address would be ours */
		else if (reg == 4 || reg == 5)
			ins->cls = C_END;
	}
	if (branch && opsize)
		ins->cls = C_FIXED;
}

static uint64_t insn_addr(const struct scan *sc, size_t k)
{
	return sc->in->addr + sc->ins[k].off;
}

static uint64_t branch_target(const struct scan *sc, size_t k)
{
	return insn_addr(sc, k) + sc->ins[k].len + (int64_t)sc->ins[k].rel;
}

/* `call *slot(%rip)` (ff 15) or `jmp *slot(%rip)` (ff 25), as -fno-plt
 * code calls an imported function through its GOT slot: the slot's
 * address, *tail = 1 for the jmp; 0 for anything else. Only the plain
 * forms (prefixes that change nothing allowed, no REX.W games): the
 * trampoline re-issues the same jump through the same slot. */
static uint64_t slot_target(const struct scan *sc, size_t k, uint8_t *tail)
{
	const struct insn *x = &sc->ins[k];
	const uint8_t *o = sc->in->code + x->off + x->op;
	if (x->len - x->op != 6 || o[0] != 0xff || (o[1] != 0x15 && o[1] != 0x25))
		return 0;
	*tail = o[1] == 0x25;
	return insn_addr(sc, k) + x->len + (int64_t)rd32(o + 2);
}

static int push_insn(struct scan *sc, const struct insn *x)
{
	if (sc->nins == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 4096;
		struct insn *n = realloc(sc->ins, cap * sizeof *n);
		if (!n)
			return -1;
		sc->ins = n;
		sc->cap = cap;
	}
	sc->ins[sc->nins++] = *x;
	return 0;
}

/* The caller's targets that fall in the range, sorted. */
static int caller_targets(struct scan *sc)
{
	const struct gre_input *in = sc->in;
	sc->tg = malloc((in->ntargets + 1) * sizeof *sc->tg);
	if (!sc->tg)
		return -1;
	for (size_t i = 0; i < in->ntargets; i++)
		if (in->targets[i] >= in->addr && in->targets[i] - in->addr < in->len)
			sc->tg[sc->ntg++] = in->targets[i];
	qsort(sc->tg, sc->ntg, sizeof *sc->tg, cmp_u64);
	return 0;
}

/* Pass 1: linear sweep, by length (insnlen.c). After a byte that does not
 * decode, boundaries are unknown until the next target the caller vouched
 * for. */
static int sweep(struct scan *sc, struct gre_result *res)
{
	const struct gre_input *in = sc->in;
	size_t off = 0;
	int desync = 0;
	while (off < in->len) {
		struct insn x = { .off = (uint32_t)off };
		uint64_t addr = in->addr + off;
		if (desync && has_u64(sc->tg, sc->ntg, addr))
			desync = 0;
		int len = gre_insn_length(in->code + off, in->len - off);
		if (len > 0) {
			x.len = (uint8_t)len;
			classify(in->code + off, &x);
		} else {
			x.len = 1;
			x.cls = C_BAD;
			if (!res->nundecodable++)
				res->first_undecodable = addr;
			desync = 1;
		}
		off += x.len;
		x.desync = (uint8_t)desync;
		if (push_insn(sc, &x) < 0)
			return -1;
	}
	res->ninsns = sc->nins;
	return 0;
}

static void mark(struct scan *sc, uint64_t t)
{
	if (t >= sc->in->addr && t - sc->in->addr < sc->in->len) {
		uint64_t o = t - sc->in->addr;
		sc->tbits[o >> 3] |= (uint8_t)(1u << (o & 7));
	}
}

/* The caller's targets and every direct branch target in the range, as a
 * bitmap: one test per instruction, no sorting. */
static int collect_targets(struct scan *sc)
{
	sc->tbits = calloc(sc->in->len / 8 + 1, 1);
	if (!sc->tbits)
		return -1;
	for (size_t i = 0; i < sc->ntg; i++)
		mark(sc, sc->tg[i]);
	for (size_t k = 0; k < sc->nins; k++) {
		uint8_t c = sc->ins[k].cls;
		if (!sc->ins[k].desync && (c == C_JMP || c == C_JCC || c == C_CALL))
			mark(sc, branch_target(sc, k));
	}
	return 0;
}

static int is_target(const struct scan *sc, size_t k)
{
	uint32_t o = sc->ins[k].off;
	return sc->tbits[o >> 3] >> (o & 7) & 1;
}

/* Capstone decodes instruction k to the same length (it will move it). */
static int capstone_agrees(const struct scan *sc, size_t k)
{
	const struct insn *x = &sc->ins[k];
	cs_insn *ci = NULL;
	int ok = cs_disasm(sc->cs, sc->in->code + x->off, x->len, insn_addr(sc, k), 1, &ci) == 1 &&
		 ci->size == x->len;
	if (ci)
		cs_free(ci, 1);
	return ok;
}

static int movable(const struct scan *sc, size_t k, uint64_t lo, uint64_t hi)
{
	const struct insn *x = &sc->ins[k];
	if (x->desync || !capstone_agrees(sc, k))
		return 0;
	switch (x->cls) {
	case C_PLAIN:
	case C_END:
		return 1;
	case C_JMP:
	case C_JCC: {
		uint64_t t = branch_target(sc, k);
		return t <= lo || t >= hi;
	}
	default:
		return 0;
	}
}

/* A window [k, j] around the site at i: the bytes add up to a jmp rel32, no
 * instruction but the first is a known target, every one but the site can
 * be moved, and nothing follows a jmp or ret. */
static int window_ok(const struct scan *sc, size_t k, size_t j, size_t i)
{
	uint64_t lo = insn_addr(sc, k), hi = insn_addr(sc, j) + sc->ins[j].len;
	for (size_t m = k; m <= j; m++) {
		if (m > k && is_target(sc, m))
			return GRE_NO_ROOM;
		if (m != i && !movable(sc, m, lo, hi))
			return GRE_UNMOVABLE;
		if (m < j && (sc->ins[m].cls == C_JMP || sc->ins[m].cls == C_END))
			return GRE_NO_ROOM;
	}
	return GRE_OK;
}

/* Picks the window of the syscall at i that starts at or after `floor`:
 * the syscall and what follows it first, then starting earlier. */
static int syscall_window(const struct scan *sc, size_t i, uint64_t floor,
			  struct gre_site *s)
{
	int why = GRE_NO_ROOM;
	for (size_t back = 0; back < 4 && back <= i; back++) {
		size_t k = i - back;
		if (insn_addr(sc, k) < floor) {
			why = GRE_OVERLAP;
			break;
		}
		uint32_t len = 0;
		for (size_t j = k; j < sc->nins; j++) {
			len += sc->ins[j].len;
			if (len > GRE_WINDOW_MAX)
				break;
			if (j >= i && len >= GRE_JMP_LEN) {
				int w = window_ok(sc, k, j, i);
				if (w == GRE_OK) {
					s->win_start = insn_addr(sc, k);
					s->win_len = len;
					return GRE_OK;
				}
				if (why != GRE_UNMOVABLE)
					why = w;
				break;
			}
			if (j > i && (sc->ins[j].cls == C_JMP || sc->ins[j].cls == C_END))
				break;
		}
	}
	return why;
}

/* The number a `mov $N,%eax` (or xor %eax,%eax) puts in eax before the
 * syscall at i, with no jump target in between; -1 when unknown. Other
 * instructions that might write eax stop the search (capstone's register
 * access lists tell). */
static int32_t find_sysno(const struct scan *sc, size_t i)
{
	for (size_t back = 1; back <= 8 && back <= i; back++) {
		size_t k = i - back;
		const struct insn *x = &sc->ins[k];
		if (is_target(sc, k + 1))
			return -1; /* a jump may reach the syscall without this */
		const uint8_t *p = sc->in->code + x->off;
		if (x->desync || x->cls != C_PLAIN)
			return -1;
		if (x->len == 5 && p[0] == 0xb8)
			return rd32(p + 1) >= 0 ? rd32(p + 1) : -1;
		if (x->len == 7 && p[0] == 0x48 && p[1] == 0xc7 && p[2] == 0xc0)
			return rd32(p + 3) >= 0 ? rd32(p + 3) : -1;
		if (x->len == 2 && (p[0] == 0x31 || p[0] == 0x33) && p[1] == 0xc0)
			return 0;
		cs_insn *ci = NULL;
		if (cs_disasm(sc->cs, p, x->len, insn_addr(sc, k), 1, &ci) != 1)
			return -1;
		cs_regs rr, ww;
		uint8_t nr = 0, nw = 0;
		int writes = 1;
		if (cs_regs_access(sc->cs, ci, rr, &nr, ww, &nw) == CS_ERR_OK) {
			writes = 0;
			for (int w = 0; w < nw; w++)
				writes |= ww[w] == X86_REG_EAX || ww[w] == X86_REG_RAX ||
					  ww[w] == X86_REG_AX || ww[w] == X86_REG_AL ||
					  ww[w] == X86_REG_AH;
		}
		cs_free(ci, 1);
		if (writes)
			return -1;
	}
	return -1;
}

static int push_site(struct gre_result *res, size_t *cap, const struct gre_site *s)
{
	if (res->nsites == *cap) {
		size_t n = *cap ? *cap * 2 : 64;
		struct gre_site *v = realloc(res->sites, n * sizeof *v);
		if (!v)
			return -1;
		res->sites = v;
		*cap = n;
	}
	res->sites[res->nsites++] = *s;
	return 0;
}

/* Pass 2: the sites and their windows, in address order. */
static int find_sites(struct scan *sc, struct gre_result *res)
{
	size_t cap = 0;
	uint64_t floor = sc->in->addr; /* end of the last window taken */
	for (size_t i = 0; i < sc->nins; i++) {
		const struct insn *x = &sc->ins[i];
		struct gre_site s = { .addr = insn_addr(sc, i), .insn_len = x->len, .sysno = -1 };
		if (x->cls == C_SYSCALL || x->cls == C_SYSENTER || x->cls == C_INT80) {
			s.kind = GOV_SITE_SYSCALL;
			if (!x->desync)
				s.sysno = find_sysno(sc, i);
			if (x->desync)
				s.reason = GRE_DESYNC;
			else if (x->cls == C_SYSENTER)
				s.reason = GRE_SYSENTER;
			else if (x->cls == C_INT80)
				s.reason = GRE_INT80;
			else if (!sc->in->want_syscalls)
				s.reason = GRE_NOT_WANTED;
			else if (s.sysno == 15) /* rt_sigreturn: __restore_rt's pattern */
				s.reason = GRE_SIGRETURN;
			else
				s.reason = (uint8_t)syscall_window(sc, i, floor, &s);
		} else if ((x->cls == C_CALL || x->cls == C_JMP) && x->len >= GRE_JMP_LEN &&
			   sc->in->ncalls &&
			   has_u64(sc->calls, sc->in->ncalls, branch_target(sc, i))) {
			s.kind = GOV_SITE_CALL;
			s.tail = x->cls == C_JMP;
			s.call_target = branch_target(sc, i);
			if (x->desync)
				s.reason = GRE_DESYNC;
			else if (s.addr < floor)
				s.reason = GRE_OVERLAP;
			else
				s.win_start = s.addr, s.win_len = x->len;
		} else if ((x->cls == C_FIXED || x->cls == C_END) && sc->in->ncalls &&
			   (s.call_target = slot_target(sc, i, &s.tail)) &&
			   has_u64(sc->calls, sc->in->ncalls, s.call_target)) {
			s.kind = GOV_SITE_CALL;
			s.indirect = 1;
			if (x->desync)
				s.reason = GRE_DESYNC;
			else if (s.addr < floor)
				s.reason = GRE_OVERLAP;
			else
				s.win_start = s.addr, s.win_len = x->len;
		} else {
			continue;
		}
		if (s.reason != GRE_OK)
			s.win_start = 0, s.win_len = 0;
		else
			floor = s.win_start + s.win_len;
		if (push_site(res, &cap, &s) < 0)
			return -1;
	}
	return 0;
}

int gre_scan(const struct gre_input *in, struct gre_result *res)
{
	memset(res, 0, sizeof *res);
	struct scan sc = { .in = in };
	int rc = -1;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &sc.cs) != CS_ERR_OK)
		return -1;
	cs_option(sc.cs, CS_OPT_DETAIL, CS_OPT_ON);
	if (in->ncalls) {
		sc.calls = malloc(in->ncalls * sizeof *sc.calls);
		if (!sc.calls)
			goto out;
		memcpy(sc.calls, in->calls, in->ncalls * sizeof *sc.calls);
		qsort(sc.calls, in->ncalls, sizeof *sc.calls, cmp_u64);
	}
	if (caller_targets(&sc) < 0 || sweep(&sc, res) < 0 ||
	    collect_targets(&sc) < 0 || find_sites(&sc, res) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		gre_result_free(res);
	free(sc.ins);
	free(sc.tg);
	free(sc.tbits);
	free(sc.calls);
	cs_close(&sc.cs);
	return rc;
}

void gre_result_free(struct gre_result *res)
{
	free(res->sites);
	memset(res, 0, sizeof *res);
}

/* ---- emitting a trampoline ---------------------------------------------- */

struct out {
	uint8_t *p;
	size_t n;
	uint64_t base; /* address of p[0] */
	int overflow;  /* a displacement did not fit */
	struct gre_cfi cfi; /* written over p[0] at the end */
	uint64_t win;  /* the window's start */
};

_Static_assert(sizeof(struct gre_cfi) == 32, "struct gre_cfi keeps trampolines 16-aligned");

/* From the code emitted next on, the frame is the original code's at
 * window offset `orig` (struct gre_cfi). */
static void cfi_row(struct out *o, uint64_t orig)
{
	struct gre_cfi *c = &o->cfi;
	uint8_t code = (uint8_t)(o->n - sizeof *c);
	if (c->nrows && c->row[c->nrows - 1].code == code) {
		c->row[c->nrows - 1].orig = (uint8_t)(orig - o->win);
		return;
	}
	if (c->nrows == GRE_CFI_ROWS || o->n - sizeof *c > 255) {
		c->nrows = GRE_CFI_ROWS + 1; /* too many: none at all, below */
		return;
	}
	c->row[c->nrows].code = code;
	c->row[c->nrows++].orig = (uint8_t)(orig - o->win);
}

static void put(struct out *o, const void *b, size_t n)
{
	if (o->n + n > GRE_TRAMP_MAX) {
		o->overflow = 1;
		return;
	}
	memcpy(o->p + o->n, b, n);
	o->n += n;
}

#define PUT(o, ...) do { static const uint8_t b_[] = { __VA_ARGS__ }; put(o, b_, sizeof b_); } while (0)

static uint64_t here(const struct out *o)
{
	return o->base + o->n;
}

/* A rel32 field ending at `end` that reaches `to`. */
static int32_t rel32(struct out *o, uint64_t end, uint64_t to)
{
	int64_t d = (int64_t)(to - end);
	if (d != (int32_t)d)
		o->overflow = 1;
	return (int32_t)d;
}

/* An instruction `op... disp32 [tail]` whose disp32 is rip-relative. */
static void put_riprel(struct out *o, const uint8_t *op, size_t nop, uint64_t to, size_t ntail_after)
{
	uint8_t b[16];
	memcpy(b, op, nop);
	wr32(b + nop, rel32(o, here(o) + nop + 4 + ntail_after, to));
	put(o, b, nop + 4);
}

static void put_jmp(struct out *o, uint64_t to)
{
	PUT(o, 0xe9);
	uint8_t b[4];
	wr32(b, rel32(o, here(o) + 4, to));
	put(o, b, 4);
}

static void put_jcc(struct out *o, uint8_t cc, uint64_t to)
{
	uint8_t b[6] = { 0x0f, (uint8_t)(0x80 | cc) };
	wr32(b + 2, rel32(o, here(o) + 6, to));
	put(o, b, 6);
}

/* Patches a rel32 field at p[at] to reach `to` once the code is final. */
static void fix_rel32(struct out *o, size_t at, uint64_t to)
{
	wr32(o->p + at, rel32(o, o->base + at + 4, to));
}

/* Copies the instruction at p into the trampoline: branches get a rel32 to
 * their old target, a rip-relative operand a displacement that still
 * reaches the same byte. The scan checked with capstone that it decodes
 * to the same length. */
static int relocate(struct out *o, uint64_t addr, const uint8_t *p, size_t max, size_t *used)
{
	int modrm, len = gre_insn_decode(p, max, &modrm);
	if (len <= 0)
		return -1;
	*used = (size_t)len;
	struct insn x = { .len = (uint8_t)len };
	classify(p, &x);
	if (x.cls == C_JMP) {
		put_jmp(o, addr + x.len + (int64_t)x.rel);
	} else if (x.cls == C_JCC) {
		const uint8_t *op = p + x.op;
		uint8_t cc = op[0] == 0x0f ? op[1] & 0x0f : op[0] & 0x0f;
		put_jcc(o, cc, addr + x.len + (int64_t)x.rel);
	} else if (x.cls == C_PLAIN || x.cls == C_END || x.cls == C_SYSCALL) {
		uint8_t b[16];
		memcpy(b, p, x.len);
		if (modrm >= 0 && (p[modrm] & 0xc7) == 0x05) {
			uint64_t to = addr + x.len + (int64_t)rd32(p + modrm + 1);
			wr32(b + modrm + 1, rel32(o, here(o) + x.len, to));
		}
		put(o, b, x.len);
	} else {
		return -1;
	}
	return 0;
}

/* Moves the window's instructions in [from, to) into the trampoline. */
static int relocate_range(struct out *o, const struct gre_input *in, uint64_t from, uint64_t to)
{
	while (from < to) {
		size_t used;
		cfi_row(o, from);
		if (relocate(o, from, in->code + (from - in->addr), to - from, &used) < 0)
			return -1;
		from += used;
	}
	return 0;
}

static void save_xmm(struct out *o, int restore)
{
	for (int n = 0; n < 16; n++) {
		uint8_t b[9];
		size_t k = 0;
		if (n >= 8)
			b[k++] = 0x44;
		b[k++] = 0x0f;
		b[k++] = restore ? 0x10 : 0x11; /* movups */
		if (n * 16 < 128) {
			b[k++] = (uint8_t)(0x44 | (n & 7) << 3);
			b[k++] = 0x24;
			b[k++] = (uint8_t)(n * 16);
		} else {
			b[k++] = (uint8_t)(0x84 | (n & 7) << 3);
			b[k++] = 0x24;
			wr32(b + k, n * 16);
			k += 4;
		}
		put(o, b, k);
	}
}

/* The slow path's common part: skip the red zone, save the frame of
 * gov/rewrite.h and the xmm registers, call govrt's entry with (site,
 * frame), restore. The entry's answer is left in ecx (syscall site) or r11d
 * (call site). */
static void slow_call(struct out *o, const struct gre_place *at, int call_site)
{
	PUT(o, 0x48, 0x8d, 0x64, 0x24, 0x80);  /* lea -0x80(%rsp),%rsp */
	PUT(o, 0x9c, 0x50, 0x57, 0x56, 0x52);  /* pushfq; push rax rdi rsi rdx */
	if (call_site)
		PUT(o, 0x51);                  /* push %rcx */
	else
		PUT(o, 0x41, 0x52);            /* push %r10 */
	PUT(o, 0x41, 0x50, 0x41, 0x51, 0x53);  /* push r8 r9 rbx */
	PUT(o, 0x48, 0x89, 0xe3);              /* mov %rsp,%rbx */
	o->cfi.slow = (uint16_t)(o->n - sizeof o->cfi);
	PUT(o, 0x48, 0x83, 0xe4, 0xf0);        /* and $-16,%rsp */
	PUT(o, 0x48, 0x81, 0xec, 0x00, 0x01, 0x00, 0x00); /* sub $256,%rsp */
	save_xmm(o, 0);
	static const uint8_t lea_rdi[] = { 0x48, 0x8d, 0x3d };
	put_riprel(o, lea_rdi, 3, at->site, 0);
	PUT(o, 0x48, 0x89, 0xde);              /* mov %rbx,%rsi */
	static const uint8_t call_ind[] = { 0xff, 0x15 };
	put_riprel(o, call_ind, 2, at->entry_slot, 0);
	if (call_site)
		PUT(o, 0x41, 0x89, 0xc3);      /* mov %eax,%r11d */
	else
		PUT(o, 0x89, 0xc1);            /* mov %eax,%ecx */
	save_xmm(o, 1);
	o->cfi.slow_len = (uint16_t)(o->n - sizeof o->cfi - o->cfi.slow);
	PUT(o, 0x48, 0x89, 0xdc);              /* mov %rbx,%rsp */
	PUT(o, 0x5b, 0x41, 0x59, 0x41, 0x58);  /* pop rbx r9 r8 */
	if (call_site)
		PUT(o, 0x59);                  /* pop %rcx */
	else
		PUT(o, 0x41, 0x5a);            /* pop %r10 */
	PUT(o, 0x5a, 0x5e, 0x5f, 0x58, 0x9d);  /* pop rdx rsi rdi rax; popfq */
	PUT(o, 0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00); /* lea 0x80(%rsp),%rsp */
}

/* Syscall site:
 *   T:    <window before the syscall, moved>
 *         movzbl verdict(%rip),%ecx      ecx dies in the syscall anyway,
 *         jrcxz do                       so the test leaves the flags alone
 *         jmp slow
 *   do:   syscall
 *   post: <window after the syscall, moved>
 *         jmp <end of window>
 *   slow: <slow_call>; jrcxz 1f; jmp post; 1: jmp do */
static void emit_syscall(struct out *o, const struct gre_input *in,
			 const struct gre_site *s, const struct gre_place *at, int *bad)
{
	uint64_t end = s->win_start + s->win_len;
	if (relocate_range(o, in, s->win_start, s->addr) < 0)
		*bad = 1;
	cfi_row(o, s->addr); /* the test and the syscall: the state at the syscall */
	static const uint8_t movzbl[] = { 0x0f, 0xb6, 0x0d };
	put_riprel(o, movzbl, 3, at->verdict, 0);
	PUT(o, 0xe3, 0x05);                    /* jrcxz do */
	size_t jslow = o->n + 1;
	put_jmp(o, here(o)); /* to slow, fixed below */
	uint64_t do_addr = here(o);
	put(o, in->code + (s->addr - in->addr), s->insn_len);
	uint64_t post = here(o);
	if (relocate_range(o, in, s->addr + s->insn_len, end) < 0)
		*bad = 1;
	cfi_row(o, end);
	put_jmp(o, end);
	if (o->overflow)
		return;
	o->cfi.fde_len = (uint16_t)(o->n - sizeof o->cfi); /* the slow path has none */
	fix_rel32(o, jslow, here(o));
	slow_call(o, at, 0);
	PUT(o, 0xe3, 0x05);                    /* jrcxz 1f */
	put_jmp(o, post);
	put_jmp(o, do_addr);
}

/* Call site (the window is the call or tail jmp itself):
 *   T:    cmpb $0,verdict(%rip); jne slow
 *   do:   lea <after the call>(%rip),%r11; push %r11; jmp callee
 *         (a tail call: jmp callee), so the callee returns to the original code;
 *         through a GOT slot (-fno-plt): jmp *slot(%rip) instead of jmp callee
 *   slow: <slow_call>; test %r11d,%r11d; je do
 *         jmp <after the call> (a tail call: ret), rax = the entry's value */
static void emit_call(struct out *o, const struct gre_site *s, const struct gre_place *at)
{
	uint64_t end = s->win_start + s->win_len;
	static const uint8_t cmpb[] = { 0x80, 0x3d };
	put_riprel(o, cmpb, 2, at->verdict, 1);
	PUT(o, 0x00);
	size_t jslow = o->n + 2;
	put_jcc(o, 0x5, here(o));              /* jne slow, fixed below */
	uint64_t do_addr = here(o);
	if (!s->tail) {
		static const uint8_t lea_r11[] = { 0x4c, 0x8d, 0x1d };
		put_riprel(o, lea_r11, 3, end, 0);
		PUT(o, 0x41, 0x53);            /* push %r11 */
	}
	if (s->indirect) {
		static const uint8_t jmp_ind[] = { 0xff, 0x25 };
		put_riprel(o, jmp_ind, 2, s->call_target, 0);
	} else {
		put_jmp(o, s->call_target);
	}
	if (o->overflow)
		return;
	fix_rel32(o, jslow, here(o));
	slow_call(o, at, 1);
	PUT(o, 0x45, 0x85, 0xdb);              /* test %r11d,%r11d */
	put_jcc(o, 0x4, do_addr);              /* je do */
	if (s->tail)
		PUT(o, 0xc3);
	else
		put_jmp(o, end);
}

int gre_emit(const struct gre_input *in, const struct gre_site *s,
	     const struct gre_place *at, uint8_t *tramp, size_t *tramp_len,
	     uint8_t *patch)
{
	if (s->reason != GRE_OK || s->win_len < GRE_JMP_LEN || s->win_len > GRE_WINDOW_MAX ||
	    s->win_start < in->addr || s->win_start + s->win_len > in->addr + in->len)
		return -1;
	struct out o = { .p = tramp, .base = at->tramp, .win = s->win_start };
	int bad = 0;
	put(&o, &o.cfi, sizeof o.cfi); /* filled in below */
	if (s->kind == GOV_SITE_CALL)
		emit_call(&o, s, at);
	else
		emit_syscall(&o, in, s, at, &bad);
	if (bad || o.overflow)
		return -1;
	o.cfi.magic = GRE_CFI_MAGIC;
	o.cfi.code_off = sizeof o.cfi;
	o.cfi.slow_orig = (uint8_t)(s->addr - s->win_start);
	o.cfi.win = (int32_t)(s->win_start - at->tramp);
	if (o.cfi.nrows > GRE_CFI_ROWS)
		o.cfi.nrows = 0, o.cfi.fde_len = 0;
	if ((int64_t)o.cfi.win != (int64_t)(s->win_start - at->tramp))
		o.cfi.nrows = 0, o.cfi.fde_len = 0, o.cfi.slow_len = 0;
	memcpy(tramp, &o.cfi, sizeof o.cfi);
	*tramp_len = o.n;
	patch[0] = 0xe9;
	int64_t d = (int64_t)(at->tramp + sizeof o.cfi - (s->win_start + GRE_JMP_LEN));
	if (d != (int32_t)d)
		return -1;
	wr32(patch + 1, (int32_t)d);
	memset(patch + GRE_JMP_LEN, 0xcc, s->win_len - GRE_JMP_LEN);
	return 0;
}
