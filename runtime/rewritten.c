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

static void add_bias(const char **p, uint64_t bias)
{
	if (*p)
		*p = (const char *)((uintptr_t)*p + bias);
}

/* Link-time addresses become run-time ones, once. */
static void relocate(struct gov_rewrite_hdr *h, uint64_t bias)
{
	if (h->relocated || !(h->flags & GOV_REWRITE_LINK_ADDRESSES)) {
		h->relocated = 1;
		return;
	}
	h->sites += bias;
	if (h->resource)
		h->resource += bias;
	struct gov_site *s = (struct gov_site *)(uintptr_t)h->sites;
	for (uint32_t i = 0; i < h->nsites; i++) {
		add_bias(&s[i].caller, bias);
		add_bias(&s[i].callee, bias);
		add_bias(&s[i].types, bias);
		add_bias(&s[i].file, bias);
	}
	h->relocated = 1;
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
		relocate(h, bias);
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
