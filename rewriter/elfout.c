/* rewriter/elfout.c - govrewrite's writing of OUT: the input file, byte for
 * byte, with each patched window replaced by its jmp, followed by two new
 * loadable segments:
 *
 *   RW  the program header table (moved here, one PT_LOAD pair and
 *       PT_GOV_REWRITE longer), struct gov_rewrite_hdr, the site table,
 *       for a dynamic module a copy of .dynamic with DT_NEEDED libgovrt.so.1
 *       and of .dynstr with its name (for libc.so.6 instead: copies of the
 *       init array and .rela.dyn for its self-start), then the strings of
 *       the site table;
 *   RX  a DT_INIT or self-start stub, then the trampolines, one after
 *       another;
 *
 * and, for a static executable, govrt-static's own PT_LOADs (static.c).
 *
 * OUT is written to a temporary file next to it and renamed over it, so it
 * is either the whole result or untouched. Not here: finding sites
 * (engine.c) or reading IN (elfin.c). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "gov/rewrite.h"
#include "govrewrite.h"

#define PAGE 0x1000u
#define GOVRT_SONAME "libgovrt.so.1"

int rw_self_started;

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* A growing byte buffer. */
struct buf {
	uint8_t *p;
	size_t n, cap;
};

static size_t buf_reserve(struct buf *b, size_t n, size_t align)
{
	size_t at = (size_t)align_up(b->n, align);
	if (at + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < at + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p)
			rw_die(RW_IO, "out of memory");
		memset(p + b->cap, 0, cap - b->cap);
		b->p = p;
		b->cap = cap;
	}
	b->n = at + n;
	return at;
}

static size_t buf_put(struct buf *b, const void *data, size_t n, size_t align)
{
	size_t at = buf_reserve(b, n, align);
	memcpy(b->p + at, data, n);
	return at;
}

/* A shared object's registration when dlopen loads it into a process
 * where govrt already runs: DT_INIT becomes a stub (in the RX segment)
 * that calls the old DT_INIT, then govrt_rewritten_scan through a slot
 * the loader fills (a GLOB_DAT relocation against a weak undefined
 * symbol added to copies of .dynsym, .gnu.version and .rela.dyn). */
#define SCAN_SYMBOL "govrt_rewritten_scan"
struct init_hook {
	int on;
	uint64_t old_init;     /* the module's DT_INIT */
	size_t init_idx;       /* its entry in the .dynamic copy */
	size_t slot;           /* 8 bytes the relocation fills */
	size_t symtab, symtab_size, versym, versym_size, rela, rela_size;
};

/* libc.so.6's own start of govrt (docs/rewrite.md, "A self-starting
 * libc"): libgovrt needs libc, so libc cannot get a DT_NEEDED libgovrt
 * (the cycle lets ld.so run govrt's constructor before libc's). Instead
 * DT_INIT_ARRAY points at a copy of libc's init array with one more entry,
 * run after libc's own: a stub (first in the RX segment) that, unless the
 * process is secure-execution (getauxval(AT_SECURE)), and only if
 * GOV_RESOURCE is set and not empty (or the rewrite named a resource),
 * calls libc's own dlopen("libgovrt.so.1", RTLD_NOW | RTLD_GLOBAL) by its
 * address: no new import. dlopen of a library already loaded (preloaded)
 * runs nothing twice. The copy's entries get R_X86_64_RELATIVE
 * relocations in a copy of .rela.dyn. */
struct self_start {
	int on;
	uint64_t getauxval, getenv, dlopen, dlerror, dprintf; /* inside libc */
	size_t array, nold;      /* the init array copy and libc's entries in it */
	size_t rela, rela_size;  /* the .rela.dyn copy */
	size_t ours;             /* the relocation of the stub's entry */
	size_t env, soname, fmt; /* the stub's strings */
	int always;              /* a resource was named: no GOV_RESOURCE needed */
};

/* The RW segment being built, and where its parts go. */
struct rw_seg {
	struct buf b;
	uint64_t vaddr, off;     /* of b.p[0] */
	size_t phdrs, hdr, sites, dyn, dynstr, strings_end;
	size_t dyn_size, dynstr_size;
	size_t nph;
	struct init_hook hook;
	struct self_start self;
};

static uint64_t str_addr(struct rw_seg *s, const char *str)
{
	return s->vaddr + buf_put(&s->b, str, strlen(str) + 1, 1);
}

struct call_types {
	const char *name, *types;
	int ret_conv;
	const char *syscall;
};
static const struct call_types libc_types[] = {
#define GOV_LIBC_ENTRY(name, sys, types, conv, flags) { #name, types, conv, #sys },
#include "gov/libc.def"
#undef GOV_LIBC_ENTRY
	{ "malloc", "pz", GOV_RET_LIBC, NULL },
	{ "calloc", "pzz", GOV_RET_LIBC, NULL },
	{ "realloc", "ppz", GOV_RET_LIBC, NULL },
	{ "free", "vp", GOV_RET_LIBC, NULL },
};

int gov_syscall_number(const char *name); /* runtime/syscalls.c */

/* One site record; strings go after the table. */
static void fill_site(struct rw_seg *s, struct gov_site *g, const struct rw_site *x)
{
	const char *types = "lllllll";
	g->kind = x->g.kind;
	g->ret_conv = GOV_RET_RAW;
	g->sysno = x->g.sysno;
	if (x->g.kind == GOV_SITE_CALL) {
		g->ret_conv = GOV_RET_LIBC;
		g->sysno = -1;
		for (size_t i = 0; i < sizeof libc_types / sizeof libc_types[0]; i++) {
			if (strcmp(libc_types[i].name, x->callee) != 0)
				continue;
			types = libc_types[i].types;
			g->ret_conv = (uint8_t)libc_types[i].ret_conv;
			if (libc_types[i].syscall)
				g->sysno = gov_syscall_number(libc_types[i].syscall);
			break;
		}
	}
	g->id = x->id;
	g->nparams = (uint8_t)(strlen(types) - 1);
	g->line = x->line;
	uint64_t p[4] = { str_addr(s, x->caller), str_addr(s, x->callee), str_addr(s, types),
			  str_addr(s, x->file) };
	memcpy(&g->caller, &p[0], 8);
	memcpy(&g->callee, &p[1], 8);
	memcpy(&g->types, &p[2], 8);
	memcpy(&g->file, &p[3], 8);
}

static const GElf_Phdr *find_phdr(const struct rw_input *in, uint32_t type)
{
	for (size_t i = 0; i < in->phnum; i++)
		if (in->ph[i].p_type == type)
			return &in->ph[i];
	return NULL;
}

/* The size of the section at address addr of type type, or 0. */
static uint64_t section_size_at(struct rw_input *in, uint64_t addr, uint32_t type)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	while ((scn = elf_nextscn(in->elf, scn)))
		if (gelf_getshdr(scn, &sh) && sh.sh_type == type && sh.sh_addr == addr)
			return sh.sh_size;
	return 0;
}

/* Copies of .dynsym (+ the weak import of SCAN_SYMBOL, named at name_off
 * of the new .dynstr), .gnu.version (+ its entry) and .rela.dyn (+ the
 * GLOB_DAT into the slot). Needs DT_INIT, DT_SYMTAB, DT_RELA and section
 * headers to size the tables; without them the module is registered only
 * at start-up or by a later scan. */
static void build_hook(struct rw_input *in, struct rw_seg *s, const Elf64_Dyn *d, size_t used,
		       uint32_t name_off)
{
	uint64_t symtab = 0, versym = 0, rela = 0, relasz = 0, init = 0;
	for (size_t i = 0; i < used; i++) {
		switch (d[i].d_tag) {
		case DT_SYMTAB: symtab = d[i].d_un.d_ptr; break;
		case DT_VERSYM: versym = d[i].d_un.d_ptr; break;
		case DT_RELA: rela = d[i].d_un.d_ptr; break;
		case DT_RELASZ: relasz = d[i].d_un.d_val; break;
		case DT_INIT: init = d[i].d_un.d_ptr; break;
		case DT_RELR: return; /* not handled: stay with start-up scans */
		}
	}
	uint64_t symsz = section_size_at(in, symtab, SHT_DYNSYM);
	uint64_t versz = versym ? section_size_at(in, versym, SHT_GNU_versym) : 0;
	int64_t symoff = rw_offset_of(in, symtab), reloff = rw_offset_of(in, rela);
	int64_t veroff = versym ? rw_offset_of(in, versym) : 0;
	if (!init || !symsz || symsz % sizeof(Elf64_Sym) || !rela || symoff < 0 || reloff < 0 ||
	    (versym && (!versz || veroff < 0 || versz != symsz / sizeof(Elf64_Sym) * 2)) ||
	    (uint64_t)symoff + symsz > in->size || (uint64_t)reloff + relasz > in->size ||
	    (uint64_t)veroff + versz > in->size || in->eh.e_type != ET_DYN ||
	    find_phdr(in, PT_INTERP))
		return;
	struct init_hook *h = &s->hook;
	uint32_t nsym = (uint32_t)(symsz / sizeof(Elf64_Sym));
	h->symtab = buf_put(&s->b, in->img + symoff, symsz, 8);
	Elf64_Sym sym = { .st_name = name_off, .st_info = ELF64_ST_INFO(STB_WEAK, STT_FUNC),
			  .st_shndx = SHN_UNDEF };
	buf_put(&s->b, &sym, sizeof sym, 1);
	h->symtab_size = symsz + sizeof sym;
	if (versym) {
		h->versym = buf_put(&s->b, in->img + veroff, versz, 2);
		uint16_t global = 1; /* VER_NDX_GLOBAL: any version */
		buf_put(&s->b, &global, 2, 1);
		h->versym_size = versz + 2;
	}
	h->slot = buf_reserve(&s->b, 8, 8);
	h->rela = buf_put(&s->b, in->img + reloff, relasz, 8);
	Elf64_Rela r = { .r_offset = s->vaddr + h->slot,
			 .r_info = ELF64_R_INFO(nsym, R_X86_64_GLOB_DAT) };
	buf_put(&s->b, &r, sizeof r, 1);
	h->rela_size = relasz + sizeof r;
	h->old_init = init;
	h->on = 1;
}

/* Points the .dynamic copy's entries at the hook's tables. */
static void hook_dynamic(struct rw_seg *s, Elf64_Dyn *o, size_t k)
{
	struct init_hook *h = &s->hook;
	if (!h->on)
		return;
	switch (o[k].d_tag) {
	case DT_SYMTAB: o[k].d_un.d_ptr = s->vaddr + h->symtab; break;
	case DT_VERSYM: if (h->versym) o[k].d_un.d_ptr = s->vaddr + h->versym; break;
	case DT_RELA: o[k].d_un.d_ptr = s->vaddr + h->rela; break;
	case DT_RELASZ: o[k].d_un.d_val = h->rela_size; break;
	case DT_INIT: h->init_idx = k; break; /* the stub's address comes later */
	}
}

/* The address of the function name defined in the module (.dynsym at
 * symtab, symsz bytes, names in str), or 0. */
static uint64_t dynsym_func(struct rw_input *in, uint64_t symtab, uint64_t symsz,
			    const char *str, uint64_t strsz, const char *name)
{
	int64_t off = rw_offset_of(in, symtab);
	if (off < 0 || (uint64_t)off + symsz > in->size)
		return 0;
	const Elf64_Sym *sym = (const Elf64_Sym *)(in->img + off);
	for (size_t i = 0; i < symsz / sizeof *sym; i++)
		if (sym[i].st_shndx != SHN_UNDEF && ELF64_ST_TYPE(sym[i].st_info) == STT_FUNC &&
		    sym[i].st_value && sym[i].st_name < strsz &&
		    strcmp(str + sym[i].st_name, name) == 0)
			return sym[i].st_value;
	return 0;
}

/* The value the loader puts at addr: a RELATIVE relocation's addend if
 * one names it, else (DT_RELR, or no relocation) what the file holds. */
static uint64_t relocated_word(struct rw_input *in, const Elf64_Rela *r, size_t nr, uint64_t addr)
{
	for (size_t i = 0; i < nr; i++)
		if (r[i].r_offset == addr && ELF64_R_TYPE(r[i].r_info) == R_X86_64_RELATIVE)
			return (uint64_t)r[i].r_addend;
	uint64_t v = 0;
	memcpy(&v, in->img + rw_offset_of(in, addr), 8);
	return v;
}

/* Prepares libc's self-start (struct self_start), or says why not and
 * leaves libc as it was (govrt then needs LD_PRELOAD). */
static int build_self_start(struct rw_input *in, struct rw_seg *s, const struct rw_opts *o,
			    const Elf64_Dyn *d, size_t used, const char *str, uint64_t strsz)
{
	uint64_t arr = 0, arrsz = 0, rela = 0, relasz = 0, symtab = 0;
	for (size_t i = 0; i < used; i++) {
		switch (d[i].d_tag) {
		case DT_INIT_ARRAY: arr = d[i].d_un.d_ptr; break;
		case DT_INIT_ARRAYSZ: arrsz = d[i].d_un.d_val; break;
		case DT_RELA: rela = d[i].d_un.d_ptr; break;
		case DT_RELASZ: relasz = d[i].d_un.d_val; break;
		case DT_SYMTAB: symtab = d[i].d_un.d_ptr; break;
		}
	}
	const char *why = NULL;
	int64_t arroff = rw_offset_of(in, arr), reloff = rw_offset_of(in, rela);
	uint64_t symsz = section_size_at(in, symtab, SHT_DYNSYM);
	struct self_start *x = &s->self;
	if (!arr || arroff < 0 || arrsz % 8 || (uint64_t)arroff + arrsz > in->size)
		why = "no DT_INIT_ARRAY inside the file";
	else if (!rela || reloff < 0 || relasz % sizeof(Elf64_Rela) ||
		 (uint64_t)reloff + relasz > in->size)
		why = "no DT_RELA inside the file";
	else if (!symsz)
		why = "no .dynsym section header";
	if (why)
		goto refuse;
	static const char *const need[] = { "getauxval", "getenv", "dlopen", "dlerror", "dprintf" };
	uint64_t *at[] = { &x->getauxval, &x->getenv, &x->dlopen, &x->dlerror, &x->dprintf };
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
		if (!(*at[i] = dynsym_func(in, symtab, symsz, str, strsz, need[i]))) {
			why = need[i];
			rw_warn("%s: libc.so.6 does not define %s (glibc 2.34 or later has dlopen "
				"inside libc): no self-start; load govrt with LD_PRELOAD=%s",
				in->path, why, GOVRT_SONAME);
			return 0;
		}
	const Elf64_Rela *r = (const Elf64_Rela *)(in->img + reloff);
	size_t nr = relasz / sizeof *r;
	x->nold = arrsz / 8;
	x->array = buf_reserve(&s->b, (x->nold + 1) * 8, 8);
	for (size_t i = 0; i < x->nold; i++) {
		uint64_t v = relocated_word(in, r, nr, arr + 8 * i);
		memcpy(s->b.p + x->array + 8 * i, &v, 8);
	}
	x->rela = buf_put(&s->b, r, relasz, 8);
	for (size_t i = 0; i <= x->nold; i++) {
		uint64_t v;
		memcpy(&v, s->b.p + x->array + 8 * i, 8);
		Elf64_Rela n = { .r_offset = s->vaddr + x->array + 8 * i,
				 .r_info = ELF64_R_INFO(0, R_X86_64_RELATIVE), .r_addend = (int64_t)v };
		size_t at2 = buf_put(&s->b, &n, sizeof n, 1);
		if (i == x->nold)
			x->ours = at2; /* its addend, the stub's address, comes later */
	}
	x->rela_size = relasz + (x->nold + 1) * sizeof *r;
	x->env = buf_put(&s->b, "GOV_RESOURCE", sizeof "GOV_RESOURCE", 1);
	x->soname = buf_put(&s->b, GOVRT_SONAME, sizeof GOVRT_SONAME, 1);
	static const char fmt[] = "govrt: the rewritten libc.so.6 could not load " GOVRT_SONAME
		" (%s): this process is not governed\n";
	x->fmt = buf_put(&s->b, fmt, sizeof fmt, 1);
	x->always = o->resource != NULL;
	x->on = 1;
	return 1;
refuse:
	rw_warn("%s: libc.so.6: %s: no self-start; load govrt with LD_PRELOAD=%s", in->path, why,
		GOVRT_SONAME);
	return 0;
}

/* A copy of .dynamic whose DT_INIT_ARRAY(SZ) and DT_RELA(SZ) point at the
 * self-start's copies; nothing else changes (no DT_NEEDED). */
static void copy_dynamic_self(struct rw_seg *s, const Elf64_Dyn *d, size_t used)
{
	struct self_start *x = &s->self;
	s->dyn_size = (used + 1) * sizeof *d;
	s->dyn = buf_reserve(&s->b, s->dyn_size, 8);
	Elf64_Dyn *o = (Elf64_Dyn *)(s->b.p + s->dyn);
	for (size_t i = 0; i < used; i++) {
		o[i] = d[i];
		switch (o[i].d_tag) {
		case DT_INIT_ARRAY: o[i].d_un.d_ptr = s->vaddr + x->array; break;
		case DT_INIT_ARRAYSZ: o[i].d_un.d_val = (x->nold + 1) * 8; break;
		case DT_RELA: o[i].d_un.d_ptr = s->vaddr + x->rela; break;
		case DT_RELASZ: o[i].d_un.d_val = x->rela_size; break;
		}
	}
	o[used].d_tag = DT_NULL;
	o[used].d_un.d_val = 0;
}

/* A copy of .dynamic with DT_NEEDED libgovrt.so.1 after the other
 * DT_NEEDEDs, pointing at a copy of .dynstr that ends with its name. */
static int copy_dynamic(struct rw_input *in, struct rw_seg *s, const struct rw_opts *opts)
{
	const GElf_Phdr *dp = find_phdr(in, PT_DYNAMIC);
	if (!dp || dp->p_offset + dp->p_filesz > in->size)
		return 0;
	const Elf64_Dyn *d = (const Elf64_Dyn *)(in->img + dp->p_offset);
	size_t n = dp->p_filesz / sizeof *d, used = 0;
	uint64_t strtab = 0, strsz = 0;
	for (; used < n && d[used].d_tag != DT_NULL; used++) {
		if (d[used].d_tag == DT_STRTAB)
			strtab = d[used].d_un.d_ptr;
		if (d[used].d_tag == DT_STRSZ)
			strsz = d[used].d_un.d_val;
	}
	int64_t stroff = rw_offset_of(in, strtab);
	if (!strtab || stroff < 0 || (uint64_t)stroff + strsz > in->size)
		rw_die(RW_REFUSED, "%s: DT_STRTAB/DT_STRSZ do not point inside the file", in->path);
	const char *str = (const char *)in->img + stroff;
	for (size_t i = 0; i < used; i++) {
		if (d[i].d_tag == DT_NEEDED && d[i].d_un.d_val < strsz &&
		    strcmp(str + d[i].d_un.d_val, GOVRT_SONAME) == 0)
			return 0; /* already there */
		/* libgovrt needs libc: a libc needing libgovrt would make a cycle
		 * in which ld.so starts govrt before libc (no environment yet) */
		if (d[i].d_tag == DT_SONAME && d[i].d_un.d_val < strsz &&
		    strcmp(str + d[i].d_un.d_val, "libc.so.6") == 0) {
			if (opts->self_start && build_self_start(in, s, opts, d, used, str, strsz)) {
				copy_dynamic_self(s, d, used);
				return 1;
			}
			if (!opts->self_start)
				rw_warn("%s: libc.so.6: --no-self-start: load govrt with LD_PRELOAD=%s",
					in->path, GOVRT_SONAME);
			return 0;
		}
		if (d[i].d_tag == DT_SONAME && d[i].d_un.d_val < strsz &&
		    strncmp(str + d[i].d_un.d_val, "ld-linux", 8) == 0) {
			rw_warn("%s: %s: DT_NEEDED %s not added (%s needs libc, and a cycle would "
				"start govrt before libc); load govrt with LD_PRELOAD=%s",
				in->path, str + d[i].d_un.d_val, GOVRT_SONAME, GOVRT_SONAME, GOVRT_SONAME);
			return 0;
		}
	}
	s->dynstr = buf_put(&s->b, str, strsz, 1);
	buf_put(&s->b, GOVRT_SONAME, sizeof GOVRT_SONAME, 1);
	buf_put(&s->b, SCAN_SYMBOL, sizeof SCAN_SYMBOL, 1);
	s->dynstr_size = strsz + sizeof GOVRT_SONAME + sizeof SCAN_SYMBOL;
	build_hook(in, s, d, used, (uint32_t)(strsz + sizeof GOVRT_SONAME));
	s->dyn_size = (used + 2) * sizeof *d;
	s->dyn = buf_reserve(&s->b, s->dyn_size, 8);
	Elf64_Dyn *o = (Elf64_Dyn *)(s->b.p + s->dyn);
	size_t k = 0, i = 0;
	for (; i < used && d[i].d_tag == DT_NEEDED; i++)
		o[k++] = d[i];
	o[k].d_tag = DT_NEEDED;
	o[k++].d_un.d_val = strsz;
	for (; i < used; i++) {
		o[k] = d[i];
		if (o[k].d_tag == DT_STRTAB)
			o[k].d_un.d_ptr = s->vaddr + s->dynstr;
		if (o[k].d_tag == DT_STRSZ)
			o[k].d_un.d_val = s->dynstr_size;
		hook_dynamic(s, o, k);
		k++;
	}
	o[k].d_tag = DT_NULL;
	o[k].d_un.d_val = 0;
	return 1;
}

/* Where offset 0 of the file is in memory: the first PT_LOAD's address
 * minus its offset. */
static uint64_t load_base(const struct rw_input *in)
{
	for (size_t i = 0; i < in->phnum; i++)
		if (in->ph[i].p_type == PT_LOAD)
			return in->ph[i].p_vaddr - in->ph[i].p_offset;
	return 0;
}

static uint64_t image_end(const struct rw_input *in)
{
	uint64_t end = 0;
	for (size_t i = 0; i < in->phnum; i++)
		if (in->ph[i].p_type == PT_LOAD && in->ph[i].p_vaddr + in->ph[i].p_memsz > end)
			end = in->ph[i].p_vaddr + in->ph[i].p_memsz;
	return end;
}

/* The new program header table: the old one with PT_PHDR and PT_DYNAMIC
 * moved here, the two new PT_LOADs after the last old one (PT_LOADs stay
 * in address order) and PT_GOV_REWRITE at the end. */
static void write_phdrs(struct rw_input *in, struct rw_seg *s, uint64_t rx_vaddr,
			uint64_t rx_off, size_t rx_size, const struct rw_static *rt)
{
	Elf64_Phdr *o = (Elf64_Phdr *)(s->b.p + s->phdrs);
	size_t last_load = 0, k = 0;
	for (size_t i = 0; i < in->phnum; i++)
		if (in->ph[i].p_type == PT_LOAD)
			last_load = i;
	for (size_t i = 0; i < in->phnum; i++) {
		const GElf_Phdr *p = &in->ph[i];
		Elf64_Phdr q = { p->p_type, p->p_flags, p->p_offset, p->p_vaddr, p->p_paddr,
				 p->p_filesz, p->p_memsz, p->p_align };
		if (p->p_type == PT_PHDR) {
			q.p_offset = s->off + s->phdrs;
			q.p_vaddr = q.p_paddr = s->vaddr + s->phdrs;
			q.p_filesz = q.p_memsz = s->nph * sizeof q;
		}
		if (p->p_type == PT_DYNAMIC && s->dyn_size) {
			q.p_offset = s->off + s->dyn;
			q.p_vaddr = q.p_paddr = s->vaddr + s->dyn;
			q.p_filesz = q.p_memsz = s->dyn_size;
		}
		o[k++] = q;
		if (i == last_load) {
			o[k++] = (Elf64_Phdr){ PT_LOAD, PF_R | PF_W, s->off, s->vaddr, s->vaddr,
					       s->b.n, s->b.n, PAGE };
			o[k++] = (Elf64_Phdr){ PT_LOAD, PF_R | PF_X, rx_off, rx_vaddr, rx_vaddr,
					       rx_size, rx_size, PAGE };
			if (rt)
				k += rw_static_phdrs(rt, o + k);
		}
	}
	o[k++] = (Elf64_Phdr){ PT_GOV_REWRITE, PF_R, s->off + s->hdr, s->vaddr + s->hdr,
			       s->vaddr + s->hdr, sizeof(struct gov_rewrite_hdr),
			       sizeof(struct gov_rewrite_hdr), 8 };
}

/* Points the .dynamic and .dynstr section headers at the copies, so that
 * readelf -d shows what the loader reads. */
static void move_sections(struct rw_input *in, uint8_t *img, const struct rw_seg *s)
{
	if (!s->dyn_size || !in->eh.e_shnum || in->eh.e_shentsize != sizeof(Elf64_Shdr))
		return;
	Elf64_Shdr *sh = (Elf64_Shdr *)(img + in->eh.e_shoff);
	size_t shstrndx;
	if (elf_getshdrstrndx(in->elf, &shstrndx) < 0)
		return;
	for (size_t i = 0; i < in->eh.e_shnum; i++) {
		const char *name = elf_strptr(in->elf, shstrndx, sh[i].sh_name);
		if (name && strcmp(name, ".dynamic") == 0) {
			sh[i].sh_offset = s->off + s->dyn;
			sh[i].sh_addr = s->vaddr + s->dyn;
			sh[i].sh_size = s->dyn_size;
		} else if (s->dynstr_size && name && strcmp(name, ".dynstr") == 0) {
			sh[i].sh_offset = s->off + s->dynstr;
			sh[i].sh_addr = s->vaddr + s->dynstr;
			sh[i].sh_size = s->dynstr_size;
		} else if (s->hook.on && name && strcmp(name, ".dynsym") == 0) {
			sh[i].sh_offset = s->off + s->hook.symtab;
			sh[i].sh_addr = s->vaddr + s->hook.symtab;
			sh[i].sh_size = s->hook.symtab_size;
		} else if (s->hook.on && s->hook.versym && name && strcmp(name, ".gnu.version") == 0) {
			sh[i].sh_offset = s->off + s->hook.versym;
			sh[i].sh_addr = s->vaddr + s->hook.versym;
			sh[i].sh_size = s->hook.versym_size;
		} else if (s->hook.on && name && strcmp(name, ".rela.dyn") == 0) {
			sh[i].sh_offset = s->off + s->hook.rela;
			sh[i].sh_addr = s->vaddr + s->hook.rela;
			sh[i].sh_size = s->hook.rela_size;
		} else if (s->self.on && name && strcmp(name, ".rela.dyn") == 0) {
			sh[i].sh_offset = s->off + s->self.rela;
			sh[i].sh_addr = s->vaddr + s->self.rela;
			sh[i].sh_size = s->self.rela_size;
		} else if (s->self.on && name && strcmp(name, ".init_array") == 0) {
			sh[i].sh_offset = s->off + s->self.array;
			sh[i].sh_addr = s->vaddr + s->self.array;
			sh[i].sh_size = (s->self.nold + 1) * 8;
		}
	}
}

/* A call site's trampoline pushes the return address itself and jumps, so
 * the callee's ret has no shadow-stack entry to match: an output with call
 * sites no longer supports CET shadow stacks, and must not say it does
 * (GNU_PROPERTY_X86_FEATURE_1_AND, bit SHSTK, in .note.gnu.property). */
static void drop_shstk(const struct rw_input *in, uint8_t *img)
{
	const GElf_Phdr *p = find_phdr(in, PT_GNU_PROPERTY);
	if (!p || p->p_offset + p->p_filesz > in->size)
		return;
	uint8_t *n = img + p->p_offset, *end = n + p->p_filesz;
	while (n + 16 <= end) {
		uint32_t namesz, descsz, type;
		memcpy(&namesz, n, 4), memcpy(&descsz, n + 4, 4), memcpy(&type, n + 8, 4);
		uint8_t *desc = n + align_up(12 + (uint64_t)namesz, 8);
		if (desc + descsz > end)
			return;
		for (uint8_t *q = desc; type == NT_GNU_PROPERTY_TYPE_0 && q + 8 <= desc + descsz;) {
			uint32_t pt, sz, bits;
			memcpy(&pt, q, 4), memcpy(&sz, q + 4, 4);
			if (pt == GNU_PROPERTY_X86_FEATURE_1_AND && sz >= 4) {
				memcpy(&bits, q + 8, 4);
				bits &= ~(uint32_t)GNU_PROPERTY_X86_FEATURE_1_SHSTK;
				memcpy(q + 8, &bits, 4);
			}
			q += 8 + align_up(sz, 8);
		}
		n = desc + align_up(descsz, 8);
	}
}

/* DT_INIT's stub, first in the RX segment:
 *   sub $8,%rsp; call <old DT_INIT>; mov slot(%rip),%rax; test %rax,%rax;
 *   je 1f; call *%rax; 1: add $8,%rsp; ret */
static void emit_init_stub(struct rw_seg *s, struct buf *rx, uint64_t rx_vaddr)
{
	struct init_hook *h = &s->hook;
	uint8_t b[32] = { 0x48, 0x83, 0xec, 0x08, 0xe8 };
	int32_t rel = (int32_t)(h->old_init - (rx_vaddr + 9));
	memcpy(b + 5, &rel, 4);
	b[9] = 0x48, b[10] = 0x8b, b[11] = 0x05;
	rel = (int32_t)(s->vaddr + h->slot - (rx_vaddr + 16));
	memcpy(b + 12, &rel, 4);
	static const uint8_t tail[] = { 0x48, 0x85, 0xc0, 0x74, 0x02, 0xff, 0xd0, 0x48, 0x83,
					0xc4, 0x08, 0xc3 };
	memcpy(b + 16, tail, sizeof tail);
	buf_put(rx, b, 16 + sizeof tail, 16);
	Elf64_Dyn *o = (Elf64_Dyn *)(s->b.p + s->dyn);
	o[h->init_idx].d_un.d_ptr = rx_vaddr;
}

/* The self-start stub, first in the RX segment (struct self_start):
 *	push %rbx                      (aligns the stack for the calls)
 *	mov $AT_SECURE,%edi; call getauxval; test %rax,%rax; jne out
 *	lea "GOV_RESOURCE"(%rip),%rdi; call getenv;      (unless always)
 *	test %rax,%rax; je out; cmpb $0,(%rax); je out
 *	lea "libgovrt.so.1"(%rip),%rdi; mov $RTLD_NOW|RTLD_GLOBAL,%esi
 *	call dlopen; test %rax,%rax; jne out
 *	call dlerror; mov %rax,%rdx; mov $2,%edi; lea fmt(%rip),%rsi
 *	xor %eax,%eax; call dprintf
 * out:	pop %rbx; ret
 * Its address goes into the last entry of the init array copy (as the
 * addend of that entry's relocation). */
struct code {
	uint8_t b[160];
	size_t n;
	uint64_t at;            /* address of b[0] */
	size_t jumps[4], njumps;
};

static void op(struct code *c, const void *bytes, size_t n)
{
	memcpy(c->b + c->n, bytes, n);
	c->n += n;
}

/* An instruction ending in a rel32 to target. */
static void op_rel(struct code *c, const void *bytes, size_t n, uint64_t target)
{
	op(c, bytes, n);
	int32_t rel = (int32_t)(target - (c->at + c->n + 4));
	op(c, &rel, 4);
}

static void op_jcc_out(struct code *c, uint8_t cc)
{
	uint8_t j[] = { 0x0f, cc };
	op(c, j, 2);
	c->jumps[c->njumps++] = c->n;
	op(c, "\0\0\0\0", 4);
}

static void emit_self_stub(struct rw_seg *s, struct buf *rx, uint64_t rx_vaddr)
{
	struct self_start *x = &s->self;
	static const uint8_t test_rax[] = { 0x48, 0x85, 0xc0 };
	struct code c = { .at = rx_vaddr };
	op(&c, "\x53\xbf\x17\x00\x00\x00", 6); /* push %rbx; mov $23 (AT_SECURE),%edi */
	op_rel(&c, "\xe8", 1, x->getauxval);
	op(&c, test_rax, 3);
	op_jcc_out(&c, 0x85);
	if (!x->always) {
		op_rel(&c, "\x48\x8d\x3d", 3, s->vaddr + x->env);
		op_rel(&c, "\xe8", 1, x->getenv);
		op(&c, test_rax, 3);
		op_jcc_out(&c, 0x84);
		op(&c, "\x80\x38\x00", 3); /* cmpb $0,(%rax) */
		op_jcc_out(&c, 0x84);
	}
	op_rel(&c, "\x48\x8d\x3d", 3, s->vaddr + x->soname);
	op(&c, "\xbe\x02\x01\x00\x00", 5); /* RTLD_NOW | RTLD_GLOBAL */
	op_rel(&c, "\xe8", 1, x->dlopen);
	op(&c, test_rax, 3);
	op_jcc_out(&c, 0x85);
	op_rel(&c, "\xe8", 1, x->dlerror);
	op(&c, "\x48\x89\xc2\xbf\x02\x00\x00\x00", 8); /* mov %rax,%rdx; mov $2,%edi */
	op_rel(&c, "\x48\x8d\x35", 3, s->vaddr + x->fmt);
	op(&c, "\x31\xc0", 2);
	op_rel(&c, "\xe8", 1, x->dprintf);
	for (size_t i = 0; i < c.njumps; i++) {
		int32_t rel = (int32_t)(c.n - (c.jumps[i] + 4));
		memcpy(c.b + c.jumps[i], &rel, 4);
	}
	op(&c, "\x5b\xc3", 2); /* out: pop %rbx; ret */
	size_t at = buf_put(rx, c.b, c.n, 16);
	int64_t addend = (int64_t)(rx_vaddr + at);
	memcpy(s->b.p + x->ours + offsetof(Elf64_Rela, r_addend), &addend, 8);
	memcpy(s->b.p + x->array + 8 * x->nold, &addend, 8);
}

static void write_atomically(const char *path, const char *in_path, const struct buf *parts,
			     size_t nparts)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.govrewrite-XXXXXX", path) >= (int)sizeof tmp)
		rw_die(RW_USAGE, "%s: path too long", path);
	int fd = mkstemp(tmp);
	if (fd < 0)
		rw_die(RW_IO, "%s: cannot create a temporary file next to it: %s", path,
		       strerror(errno));
	struct stat st;
	int ok = stat(in_path, &st) == 0 && fchmod(fd, st.st_mode & 07777) == 0;
	for (size_t i = 0; ok && i < nparts; i++) {
		size_t done = 0;
		if (!parts[i].p) {
			ok = lseek(fd, (off_t)parts[i].n, SEEK_CUR) >= 0;
			continue;
		}
		while (ok && done < parts[i].n) {
			ssize_t w = write(fd, parts[i].p + done, parts[i].n - done);
			ok = w > 0;
			done += ok ? (size_t)w : 0;
		}
	}
	int err = errno;
	if (ok && fsync(fd) != 0)
		ok = 0, err = errno;
	if (close(fd) != 0 && ok)
		ok = 0, err = errno;
	if (ok && rename(tmp, path) != 0)
		ok = 0, err = errno;
	if (!ok) {
		unlink(tmp);
		rw_die(RW_IO, "%s: not written: %s", path, strerror(err));
	}
}

static const struct rw_range *range_of(const struct rw_input *in, const struct rw_site *x)
{
	return &in->ranges[x->range];
}

size_t rw_write_output(struct rw_input *in, const struct rw_opts *o,
		       struct rw_site *sites, size_t nsites)
{
	struct rw_seg s = { 0 };
	size_t npatch = 0;
	for (size_t i = 0; i < nsites; i++)
		npatch += sites[i].g.reason == GRE_OK;
	if (in->phnum + 3 >= PN_XNUM)
		rw_die(RW_REFUSED, "%s: no room for a segment: %zu program headers already",
		       in->path, in->phnum);
	/* a static executable carries govrt-static (static.c) */
	struct rw_static *rt = rw_static_wanted(in) ? &rw_embedded : NULL;
	if (rt)
		rw_static_load(rt);
	if (rt && in->phnum + 3 + rt->nload >= PN_XNUM)
		rw_die(RW_REFUSED, "%s: no room for govrt-static: a static output needs %zu more "
		       "program headers and %zu are there already (at most %u)", in->path,
		       3 + rt->nload, in->phnum, PN_XNUM - 1);
	/* The new segments sit at the same distance from the image's base in
	 * the file as in memory, so that the program header table's address
	 * is base + e_phoff, which is how kernels before 5.18 compute
	 * AT_PHDR for a program without PT_PHDR (a static one); the file is
	 * padded with a hole when the image is larger than the file, unless
	 * by more than 64 MiB (a huge .bss): then the segments follow the
	 * image and such a program needs Linux 5.18 or later. */
	uint64_t base = load_base(in), end = align_up(image_end(in), PAGE);
	s.off = align_up(in->size, PAGE);
	s.vaddr = base + s.off;
	if (end > s.vaddr) {
		if (end - s.vaddr <= (64u << 20))
			s.off = end - base;
		s.vaddr = end;
	}
	s.nph = in->phnum + 3 + (rt ? rt->nload : 0);
	s.phdrs = buf_reserve(&s.b, s.nph * sizeof(Elf64_Phdr), 8);
	s.hdr = buf_reserve(&s.b, sizeof(struct gov_rewrite_hdr), 8);
	s.sites = buf_reserve(&s.b, npatch * sizeof(struct gov_site), 64);
	if (in->dynamic && o->add_needed && !rt)
		copy_dynamic(in, &s, o);
	struct gov_rewrite_hdr h = { .magic = GOV_REWRITE_MAGIC, .version = GOV_REWRITE_VERSION,
				     .flags = GOV_REWRITE_LINK_ADDRESSES,
				     .nsites = (uint32_t)npatch,
				     .sites = s.vaddr + s.sites };
	if (o->resource)
		h.resource = str_addr(&s, o->resource);
	size_t k = 0;
	for (size_t i = 0; i < nsites; i++) {
		if (sites[i].g.reason != GRE_OK)
			continue;
		struct gov_site g = { 0 };
		fill_site(&s, &g, &sites[i]);
		memcpy(s.b.p + s.sites + k++ * sizeof g, &g, sizeof g);
	}
	uint64_t rx_off = align_up(s.off + s.b.n, PAGE);
	uint64_t rx_vaddr = align_up(s.vaddr + s.b.n, PAGE);
	uint64_t hdr_vaddr = s.vaddr + s.hdr;

	/* the trampolines; the engine refuses a displacement over 2 GiB */
	struct buf rx = { 0 };
	uint64_t lo_code = UINT64_MAX;
	for (size_t i = 0; i < in->nranges; i++)
		if (in->ranges[i].addr < lo_code)
			lo_code = in->ranges[i].addr;
	if (npatch && rx_vaddr + npatch * GRE_TRAMP_MAX - lo_code > 0x7fff0000ull)
		rw_die(RW_REFUSED, "%s: no room for a segment: the first free address after the "
		       "image, 0x%llx, is more than 2 GiB from the code at 0x%llx (a jmp rel32 "
		       "cannot reach it)", in->path, (unsigned long long)rx_vaddr,
		       (unsigned long long)lo_code);
	/* OUT's copy of IN: a second private mapping, written to, so only
	 * the pages that change are copied */
	if (s.hook.on)
		emit_init_stub(&s, &rx, rx_vaddr);
	if (s.self.on)
		emit_self_stub(&s, &rx, rx_vaddr);
	rw_self_started = s.self.on;
	uint8_t *img = in->size ? mmap(NULL, in->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, in->fd, 0)
				: MAP_FAILED;
	if (img == MAP_FAILED)
		rw_die(RW_IO, "%s: cannot map a copy: %s", in->path, strerror(errno));
	k = 0;
	for (size_t i = 0; i < nsites; i++) {
		struct rw_site *x = &sites[i];
		if (x->g.reason != GRE_OK)
			continue;
		const struct rw_range *r = range_of(in, x);
		struct gre_input gi = { .code = in->img + r->off, .addr = r->addr, .len = r->len };
		uint64_t site_va = s.vaddr + s.sites + k++ * sizeof(struct gov_site);
		struct gre_place at = {
			.site = site_va,
			.verdict = x->g.kind == GOV_SITE_SYSCALL && x->g.sysno < 0
				? hdr_vaddr + offsetof(struct gov_rewrite_hdr, any_syscall_verdict)
				: site_va + offsetof(struct gov_site, verdict),
			.entry_slot = hdr_vaddr + offsetof(struct gov_rewrite_hdr, entry_slot),
		};
		size_t off = buf_reserve(&rx, GRE_TRAMP_MAX, 16);
		at.tramp = rx_vaddr + off;
		size_t len;
		uint8_t patch[GRE_WINDOW_MAX];
		if (gre_emit(&gi, &x->g, &at, rx.p + off, &len, patch) < 0)
			rw_die(RW_REFUSED, "%s: cannot write the trampoline of the site at 0x%llx",
			       in->path, (unsigned long long)x->g.addr);
		rx.n = off + len;
		x->tramp = at.tramp;
		memcpy(img + r->off + (x->g.win_start - r->addr), patch, x->g.win_len);
	}
	h.text_start = lo_code;
	h.tramp_start = rx_vaddr;
	h.tramp_end = rx_vaddr + rx.n;
	for (size_t i = 0; i < in->nranges; i++)
		if (in->ranges[i].addr + in->ranges[i].len > h.text_end)
			h.text_end = in->ranges[i].addr + in->ranges[i].len;
	memcpy(s.b.p + s.hdr, &h, sizeof h);
	uint8_t *blob = NULL;
	uint64_t rt_off = 0, rt_end = 0;
	if (rt) {
		/* after the trampolines, a page further if there are none */
		uint64_t gap = align_up(rx.n, PAGE) + (rx.n ? 0 : PAGE);
		if (rx_vaddr + gap + rt->span > 0x7ffffffff000ull || rx_vaddr + gap < rx_vaddr)
			rw_die(RW_REFUSED, "%s: no room for govrt-static: %llu bytes at 0x%llx would "
			       "pass the end of the user address space", in->path,
			       (unsigned long long)rt->span, (unsigned long long)(rx_vaddr + gap));
		rt_off = rx_off + gap;
		blob = rw_static_place(rt, rx_vaddr + gap, rt_off, hdr_vaddr, in->eh.e_entry);
		rt_end = rt->file_end;
	}
	write_phdrs(in, &s, rx_vaddr, rx_off, rx.n, rt);
	move_sections(in, img, &s);
	for (size_t i = 0; i < nsites; i++)
		if (sites[i].g.reason == GRE_OK && sites[i].g.kind == GOV_SITE_CALL) {
			drop_shstk(in, img);
			break;
		}
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	eh->e_phoff = s.off + s.phdrs;
	eh->e_phnum = (uint16_t)s.nph;
	if (rt)
		eh->e_entry = rt->vaddr + rt->start;

	if (!o->dry_run) {
		/* a part without bytes is a hole: zeros that take no room */
		struct buf pad1 = { .p = NULL, .n = s.off - in->size };
		struct buf pad2 = { .p = NULL, .n = rx_off - (s.off + s.b.n) };
		struct buf pad3 = { .p = NULL, .n = rt ? rt_off - (rx_off + rx.n) : 0 };
		struct buf rtb = { .p = blob, .n = rt_end };
		struct buf parts[] = { { img, in->size, 0 }, pad1, s.b, pad2, rx, pad3, rtb };
		write_atomically(o->out, in->path, parts,
				 sizeof parts / sizeof parts[0] - (rt ? 0 : 2));
	}
	munmap(img, in->size);
	free(rx.p);
	free(s.b.p);
	free(blob);
	return npatch;
}
