/* runtime/rewritten.c - govrt's half of gov/rewrite.h: finds the modules
 * govrewrite rewrote, registers their site tables, and is the entry their
 * trampolines call when a site's verdict is not native.
 *
 * At start-up (a constructor) and whenever govrt_rewritten_scan() is called
 * again (after dlopen), dl_iterate_phdr lists the loaded modules; each
 * PT_GOV_REWRITE header found there gets the load bias added to its
 * pointers (once), its entry slot filled, and its table registered like a
 * plugin-built module's. The entry slot is written before the table is
 * registered: registering may set verdict bytes, and a set verdict sends
 * the trampoline through the slot.
 *
 * Syscall sites whose number the rewriter could not read test one shared
 * byte per module (any_syscall_verdict) and pass the number in rax; govrt
 * keeps one site per syscall number (a module of its own, so the decision
 * table applies to it like to any other) and decides such a call by it.
 *
 * Not here: the trampolines (rewriter/engine.c), patching code in memory
 * (Syscall User Dispatch and lazy patching live elsewhere in govrt). */
#include <errno.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include "gov/rewrite.h"
#include "../rewriter/engine.h"
#include "govrt_private.h"

#define NSYSNO 512 /* syscall numbers govrt keeps a site for */

static struct gov_site by_number[NSYSNO];
uint8_t govrt_any_syscall_verdict;
static struct gov_rewrite_hdr **hdrs; /* every header registered, under govrt.lock */
static size_t nhdrs;
static __thread int inside __attribute__((tls_model("initial-exec")));

/* The entry of gov/rewrite.h. A call made by govrt itself while it decides
 * (through a rewritten libc) runs natively. */
int govrt_rewritten_entry(struct gov_site *site, struct gov_rewrite_frame *f)
{
	if (inside)
		return 0;
	struct gov_site *s = site;
	if (site->kind == GOV_SITE_SYSCALL && site->sysno < 0) {
		if (f->rax >= NSYSNO)
			return 0;
		s = &by_number[f->rax];
		if (!__atomic_load_n(&s->verdict, __ATOMIC_ACQUIRE))
			return 0;
	}
	inside = 1;
	int saved = errno;
	struct gov_call call = { .arg = { f->rdi, f->rsi, f->rdx, f->a3, f->r8, f->r9 } };
	int r = __govrt_dispatch(s, &call);
	f->rdi = call.arg[0], f->rsi = call.arg[1], f->rdx = call.arg[2];
	f->a3 = call.arg[3], f->r8 = call.arg[4], f->r9 = call.arg[5];
	if (r == GOV_RUN_RETURN)
		f->rax = (uint64_t)call.ret;
	if (site->kind == GOV_SITE_SYSCALL)
		errno = saved; /* a syscall instruction never touches errno */
	inside = 0;
	return r == GOV_RUN_RETURN;
}

/* ---- unwind information for the trampolines ----
 * Each trampoline starts with a struct gre_cfi (rewriter/engine.h): rows
 * that say which original instruction's frame the trampoline's code
 * stands for. They become one .eh_frame of our own per module, registered
 * with libgcc's unwinder (__register_frame, which it searches before the
 * modules' own tables): an FDE per trampoline whose CFA is rsp and whose
 * return address is, row by row, the original address + 1 (a
 * DW_CFA_val_expression), so the unwinder looks that address up in the
 * original function's FDE and goes on from there. Without libgcc_s (a
 * static program) nothing is registered: the unwinder stops there, as
 * before. */
void __register_frame(void *begin) __attribute__((weak));

struct ehbuf {
	uint8_t *p;
	size_t n, cap;
};

static void eh_put(struct ehbuf *b, const void *v, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->n + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->cap = 0; /* marks the failure */
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (b->cap) {
		memcpy(b->p + b->n, v, n);
		b->n += n;
	}
}

static void eh_u8(struct ehbuf *b, uint8_t v) { eh_put(b, &v, 1); }
static void eh_u32(struct ehbuf *b, uint32_t v) { eh_put(b, &v, 4); }

static void eh_patch_len(struct ehbuf *b, size_t at)
{
	if (b->cap) {
		uint32_t len = (uint32_t)(b->n - at - 4);
		memcpy(b->p + at, &len, 4);
	}
}

/* The CIE: "zR", code alignment 1, data alignment -8, return address
 * column 16, absolute FDE addresses; initially CFA = rsp. */
static void eh_cie(struct ehbuf *b)
{
	static const uint8_t cie[] = {
		0, 0, 0, 0,          /* CIE id */
		1, 'z', 'R', 0,      /* version, augmentation */
		1, 0x78, 16,         /* code align 1, data align -8 (sleb), ra column 16 */
		1, 0x00,             /* augmentation data: FDE pointers absolute (absptr) */
		0x0c, 7, 0,          /* DW_CFA_def_cfa rsp, 0 */
	};
	size_t at = b->n;
	eh_u32(b, 0);
	eh_put(b, cie, sizeof cie);
	while ((b->n - at) % 8)
		eh_u8(b, 0); /* DW_CFA_nop */
	eh_patch_len(b, at);
}

/* DW_CFA_val_expression r16, { DW_OP_const8u ra }: the return address
 * is that value, not something saved. */
static void eh_ra(struct ehbuf *b, uint64_t ra)
{
	static const uint8_t op[] = { 0x16, 16, 9, 0x0e };
	eh_put(b, op, sizeof op);
	eh_put(b, &ra, 8);
}

static size_t eh_fde_start(struct ehbuf *b, uint64_t pc, uint64_t len)
{
	size_t start = b->n;
	eh_u32(b, 0);
	eh_u32(b, (uint32_t)(b->n)); /* CIE pointer: back to offset 0 */
	eh_put(b, &pc, 8);
	eh_put(b, &len, 8);
	eh_u8(b, 0); /* no augmentation data */
	return start;
}

static void eh_fde_end(struct ehbuf *b, size_t start)
{
	while ((b->n - start) % 8)
		eh_u8(b, 0);
	eh_patch_len(b, start);
}

/* The fast part: CFA = rsp, the return address row by row. */
static void eh_fde_fast(struct ehbuf *b, const struct gre_cfi *c, uintptr_t at, uint64_t win)
{
	size_t start = eh_fde_start(b, at + c->code_off, c->fde_len);
	unsigned last = 0;
	for (int i = 0; i < c->nrows; i++) {
		if (c->row[i].code != last) {
			eh_u8(b, 0x02); /* DW_CFA_advance_loc1 */
			eh_u8(b, (uint8_t)(c->row[i].code - last));
			last = c->row[i].code;
		}
		eh_ra(b, win + c->row[i].orig + 1);
	}
	eh_fde_end(b, start);
}

/* The slow path's call: CFA = rbx + 200, rbx saved at CFA - 200. */
static void eh_fde_slow(struct ehbuf *b, const struct gre_cfi *c, uintptr_t at, uint64_t win)
{
	size_t start = eh_fde_start(b, at + c->code_off + c->slow, c->slow_len);
	static const uint8_t cfa[] = {
		0x0c, 3, 0x80 | (GRE_CFI_SLOW_CFA & 0x7f), GRE_CFI_SLOW_CFA >> 7, /* def_cfa rbx, 200 (uleb128) */
		0x80 | 3, GRE_CFI_SLOW_CFA / 8,                     /* offset rbx, cfa-200 */
	};
	eh_put(b, cfa, sizeof cfa);
	eh_ra(b, win + c->slow_orig + 1);
	eh_fde_end(b, start);
}

static int cfi_ok(const struct gre_cfi *c, uintptr_t at, uintptr_t end)
{
	if (c->magic != GRE_CFI_MAGIC || c->code_off != sizeof *c || c->nrows > GRE_CFI_ROWS ||
	    at + c->code_off + c->fde_len > end ||
	    at + c->code_off + (uint64_t)c->slow + c->slow_len > end ||
	    (c->nrows && (!c->fde_len || c->row[0].code != 0)))
		return 0;
	for (int i = 1; i < c->nrows; i++)
		if (c->row[i].code <= c->row[i - 1].code || c->row[i].code >= c->fde_len)
			return 0;
	return 1;
}

/* Registers the unwind rows of the trampolines in [start, end) (run-time
 * addresses, govrewrite's or govrt's own); the table stays registered for
 * the life of the process (a rewritten module is not unloaded while govrt
 * runs its sites). Allocates: never from a signal handler. */
void govrt_register_tramp_cfi(uintptr_t start, uintptr_t end)
{
	if (!__register_frame || end <= start)
		return;
	struct ehbuf b = { 0 };
	eh_cie(&b);
	size_t nfde = 0;
	for (uintptr_t at = (start + 15) & ~(uintptr_t)15; at + sizeof(struct gre_cfi) <= end; at += 16) {
		struct gre_cfi c;
		memcpy(&c, (const void *)at, sizeof c);
		if (!cfi_ok(&c, at, end))
			continue;
		uint64_t win = (uint64_t)((intptr_t)at + c.win);
		if (c.nrows)
			eh_fde_fast(&b, &c, at, win), nfde++;
		if (c.slow_len)
			eh_fde_slow(&b, &c, at, win), nfde++;
		uintptr_t last = c.code_off + (uintptr_t)c.slow + c.slow_len;
		if (c.fde_len + c.code_off > last)
			last = c.fde_len + c.code_off;
		at += (last - 1) & ~(uintptr_t)15;
	}
	eh_u32(&b, 0); /* the terminator */
	if (!b.cap || !nfde) {
		if (!b.cap)
			govrt_warn("out of memory for the unwind table of rewritten code; "
				   "unwinding stops at its trampolines");
		free(b.p);
		return;
	}
	__register_frame(b.p);
	govrt_debug("%zu unwind entries for the trampolines at %#lx registered", nfde,
		    (unsigned long)start);
}

/* A leaf of govrt's own outside any module (the gate's syscall): CFA =
 * rsp + 8, the return address at CFA - 8, as at any function's entry. */
void govrt_register_leaf_cfi(uintptr_t start, size_t len)
{
	if (!__register_frame)
		return;
	struct ehbuf b = { 0 };
	eh_cie(&b);
	size_t at = eh_fde_start(&b, start, len);
	static const uint8_t leaf[] = { 0x0e, 8, 0x80 | 16, 1 }; /* def_cfa_offset 8; offset r16, cfa-8 */
	eh_put(&b, leaf, sizeof leaf);
	eh_fde_end(&b, at);
	eh_u32(&b, 0);
	if (b.cap)
		__register_frame(b.p);
	else
		free(b.p);
}

struct found {
	struct gov_rewrite_hdr **h;
	uint64_t *bias;
	size_t n;
};

static int find_headers(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct found *f = arg;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type != PT_GOV_REWRITE || p->p_memsz < sizeof(struct gov_rewrite_hdr))
			continue;
		struct gov_rewrite_hdr *h = (void *)(info->dlpi_addr + p->p_vaddr);
		struct gov_rewrite_hdr **nh = realloc(f->h, (f->n + 1) * sizeof *nh);
		uint64_t *nb = realloc(f->bias, (f->n + 1) * sizeof *nb);
		if (nh)
			f->h = nh;
		if (nb)
			f->bias = nb;
		if (!nh || !nb)
			return 1;
		f->h[f->n] = h;
		f->bias[f->n++] = info->dlpi_addr;
	}
	return 0;
}

static void register_by_number(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	for (int nr = 0; nr < NSYSNO; nr++) {
		struct gov_site *s = &by_number[nr];
		s->kind = GOV_SITE_SYSCALL;
		s->ret_conv = GOV_RET_RAW;
		s->nparams = 6;
		s->sysno = gov_syscall_name(nr) ? nr : -1;
		s->caller = "?";
		s->types = "lllllll";
		s->file = "?";
	}
	static const struct gov_module m = { GOV_ABI_VERSION, 0, by_number,
					     by_number + NSYSNO, NULL };
	__govrt_register_module(&m);
}

/* Called by govrt.c each time verdicts change (govrt.lock held). */
void govrt_rewritten_refresh(void)
{
	uint8_t any = 0;
	for (int nr = 0; nr < NSYSNO; nr++)
		any |= __atomic_load_n(&by_number[nr].verdict, __ATOMIC_RELAXED);
	__atomic_store_n(&govrt_any_syscall_verdict, any, __ATOMIC_RELEASE);
	for (size_t i = 0; i < nhdrs; i++)
		__atomic_store_n(&hdrs[i]->any_syscall_verdict, any, __ATOMIC_RELEASE);
}

static int known(const struct gov_rewrite_hdr *h)
{
	for (size_t i = 0; i < nhdrs; i++)
		if (hdrs[i] == h)
			return 1;
	return 0;
}

static void add_module(struct gov_rewrite_hdr *h, uint64_t bias)
{
	if (h->magic != GOV_REWRITE_MAGIC || h->version != GOV_REWRITE_VERSION) {
		govrt_warn("a rewritten module at %p has header version %u (this govrt reads %u); "
			   "its sites stay native", (void *)h, h->version, GOV_REWRITE_VERSION);
		return;
	}
	pthread_mutex_lock(&govrt.lock);
	int seen = known(h);
	struct gov_rewrite_hdr **nh = seen ? hdrs : realloc(hdrs, (nhdrs + 1) * sizeof *nh);
	if (nh && !seen) {
		hdrs = nh;
		hdrs[nhdrs++] = h;
		uint64_t tbias = h->flags & GOV_REWRITE_LINK_ADDRESSES ? bias : 0;
		govrt_register_tramp_cfi((uintptr_t)(h->tramp_start + tbias),
					 (uintptr_t)(h->tramp_end + tbias));
		gov_rewrite_relocate(h, bias);
		__atomic_store_n(&h->entry_slot, (uint64_t)(uintptr_t)govrt_rewritten_entry, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&govrt.lock);
	if (seen)
		return;
	if (!nh) {
		govrt_warn("out of memory registering a rewritten module; its sites stay native");
		return;
	}
	struct gov_site *start = (struct gov_site *)(uintptr_t)h->sites;
	struct gov_module m = { GOV_ABI_VERSION, 0, start, start + h->nsites,
				(const char *)(uintptr_t)h->resource };
	__govrt_register_module(&m);
	pthread_mutex_lock(&govrt.lock);
	govrt_rewritten_refresh();
	pthread_mutex_unlock(&govrt.lock);
}

/* Exported: the DT_INIT stub of a rewritten shared object calls it through
 * a relocation, so that dlopen registers the module (rewriter/elfout.c). */
GOV_API void govrt_rewritten_scan(void)
{
	struct found f = { 0 };
	dl_iterate_phdr(find_headers, &f);
	if (f.n)
		register_by_number();
	for (size_t i = 0; i < f.n; i++)
		add_module(f.h[i], f.bias[i]);
	free(f.h);
	free(f.bias);
}

__attribute__((constructor)) static void rewritten_init(void)
{
	govrt_rewritten_scan();
}
