/* rewriter/elfout.c - govrewrite's writing of OUT: the input file, byte for
 * byte, with each patched window replaced by its jmp, followed by two new
 * loadable segments:
 *
 *   RW  the program header table (moved here, one PT_LOAD pair and
 *       PT_GOV_REWRITE longer), struct gov_rewrite_hdr, the site table,
 *       for a dynamic module a copy of .dynamic with DT_NEEDED libgovrt.so.1
 *       and of .dynstr with its name, then the strings of the site table;
 *   RX  the trampolines, one after another.
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

/* The RW segment being built, and where its parts go. */
struct rw_seg {
	struct buf b;
	uint64_t vaddr, off;     /* of b.p[0] */
	size_t phdrs, hdr, sites, dyn, dynstr, strings_end;
	size_t dyn_size, dynstr_size;
	size_t nph;
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

/* A copy of .dynamic with DT_NEEDED libgovrt.so.1 after the other
 * DT_NEEDEDs, pointing at a copy of .dynstr that ends with its name. */
static int copy_dynamic(struct rw_input *in, struct rw_seg *s)
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
		    (strcmp(str + d[i].d_un.d_val, "libc.so.6") == 0 ||
		     strncmp(str + d[i].d_un.d_val, "ld-linux", 8) == 0)) {
			rw_warn("%s: %s: DT_NEEDED %s not added (%s needs libc, and a cycle would "
				"start govrt before libc); load govrt with LD_PRELOAD=%s",
				in->path, str + d[i].d_un.d_val, GOVRT_SONAME, GOVRT_SONAME, GOVRT_SONAME);
			return 0;
		}
	}
	s->dynstr = buf_put(&s->b, str, strsz, 1);
	buf_put(&s->b, GOVRT_SONAME, sizeof GOVRT_SONAME, 1);
	s->dynstr_size = strsz + sizeof GOVRT_SONAME;
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
		k++;
	}
	o[k].d_tag = DT_NULL;
	o[k].d_un.d_val = 0;
	return 1;
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
			uint64_t rx_off, size_t rx_size)
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
		} else if (name && strcmp(name, ".dynstr") == 0) {
			sh[i].sh_offset = s->off + s->dynstr;
			sh[i].sh_addr = s->vaddr + s->dynstr;
			sh[i].sh_size = s->dynstr_size;
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
	s.off = align_up(in->size, PAGE);
	s.vaddr = align_up(image_end(in), PAGE);
	s.nph = in->phnum + 3;
	s.phdrs = buf_reserve(&s.b, s.nph * sizeof(Elf64_Phdr), 8);
	s.hdr = buf_reserve(&s.b, sizeof(struct gov_rewrite_hdr), 8);
	s.sites = buf_reserve(&s.b, npatch * sizeof(struct gov_site), 64);
	if (in->dynamic && o->add_needed)
		copy_dynamic(in, &s);
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
	write_phdrs(in, &s, rx_vaddr, rx_off, rx.n);
	move_sections(in, img, &s);
	for (size_t i = 0; i < nsites; i++)
		if (sites[i].g.reason == GRE_OK && sites[i].g.kind == GOV_SITE_CALL) {
			drop_shstk(in, img);
			break;
		}
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	eh->e_phoff = s.off + s.phdrs;
	eh->e_phnum = (uint16_t)s.nph;

	if (!o->dry_run) {
		struct buf pad1 = { .p = calloc(1, PAGE), .n = s.off - in->size };
		struct buf pad2 = { .p = pad1.p, .n = rx_off - (s.off + s.b.n) };
		struct buf parts[] = { { img, in->size, 0 }, pad1, s.b, pad2, rx };
		if (!pad1.p)
			rw_die(RW_IO, "out of memory");
		write_atomically(o->out, in->path, parts, sizeof parts / sizeof parts[0]);
		free(pad1.p);
	}
	munmap(img, in->size);
	free(rx.p);
	free(s.b.p);
	return npatch;
}
