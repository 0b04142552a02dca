/* rewriter/static.c - govrewrite's half of "a static output carries what
 * it needs inside": deciding that IN is a static executable, and laying
 * govrt-static (runtime/static/, built into build/lib/govrt-static.so and
 * embedded in govrewrite by static_blob.S) into OUT after the trampolines,
 * with its own PT_LOADs, its link record filled in and e_entry pointing at
 * it. The blob relocates itself at run time; nothing here applies
 * relocations. Not here: the trampolines (engine.c), the rest of OUT
 * (elfout.c), what govrt-static does (runtime/static/govrt_static.c). */
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include "gov/rewrite.h"
#include "govrewrite.h"

#define PAGE 0x1000u

extern const uint8_t govrt_static_blob[], govrt_static_blob_end[];

struct rw_static rw_embedded;

/* A static executable: no interpreter, and either no PT_DYNAMIC at all or
 * the one of a static-pie (DF_1_PIE), which relocates itself. */
int rw_static_wanted(const struct rw_input *in)
{
	int dyn = 0;
	for (size_t i = 0; i < in->phnum; i++) {
		if (in->ph[i].p_type == PT_INTERP)
			return 0;
		if (in->ph[i].p_type == PT_DYNAMIC) {
			const GElf_Phdr *p = &in->ph[i];
			dyn = 1;
			if (p->p_offset + p->p_filesz > in->size)
				return 0;
			const Elf64_Dyn *d = (const Elf64_Dyn *)(in->img + p->p_offset);
			for (size_t k = 0; k < p->p_filesz / sizeof *d && d[k].d_tag != DT_NULL; k++)
				if (d[k].d_tag == DT_FLAGS_1 && (d[k].d_un.d_val & DF_1_PIE))
					dyn = 0;
		}
	}
	return !dyn && (in->eh.e_type == ET_EXEC || in->eh.e_type == ET_DYN);
}

static uint64_t sym_value(Elf *e, const char *name)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	while ((scn = elf_nextscn(e, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		GElf_Sym sym;
		for (size_t i = 0; d && gelf_getsym(d, (int)i, &sym); i++) {
			const char *n = elf_strptr(e, sh.sh_link, sym.st_name);
			if (n && strcmp(n, name) == 0)
				return sym.st_value;
		}
	}
	return 0;
}

/* Reads the embedded blob: its PT_LOADs (relative to 0), its entry and
 * the offset of its link record. A wrong blob is a build error. */
void rw_static_load(struct rw_static *b)
{
	b->bytes = govrt_static_blob;
	b->size = (size_t)(govrt_static_blob_end - govrt_static_blob);
	Elf *e = elf_memory((char *)govrt_static_blob, b->size);
	GElf_Ehdr eh;
	size_t n;
	if (!e || !gelf_getehdr(e, &eh) || elf_getphdrnum(e, &n) < 0)
		rw_die(RW_REFUSED, "govrt-static (built into govrewrite) is not a readable ELF: "
		       "rebuild govrewrite");
	b->nload = 0;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr p;
		if (!gelf_getphdr(e, (int)i, &p) || p.p_type != PT_LOAD)
			continue;
		if (b->nload == RW_STATIC_MAX_LOADS || p.p_filesz > p.p_memsz ||
		    p.p_offset % PAGE != p.p_vaddr % PAGE || p.p_offset + p.p_filesz > b->size)
			rw_die(RW_REFUSED, "govrt-static: segment %zu does not have the shape govrewrite "
			       "places (at most %d PT_LOADs): rebuild govrewrite", i,
			       RW_STATIC_MAX_LOADS);
		b->load[b->nload++] = p;
		if (p.p_vaddr + p.p_memsz > b->span)
			b->span = p.p_vaddr + p.p_memsz;
	}
	b->start = eh.e_entry;
	b->file_end = 0;
	for (size_t i = 0; i < b->nload; i++)
		if (b->load[i].p_offset + b->load[i].p_memsz > b->file_end)
			b->file_end = b->load[i].p_offset + b->load[i].p_memsz;
	uint64_t link = sym_value(e, "govrt_static_link");
	int64_t off = -1;
	for (size_t i = 0; i < b->nload; i++)
		if (link >= b->load[i].p_vaddr && link + sizeof(struct gov_static_link) <=
		    b->load[i].p_vaddr + b->load[i].p_filesz)
			off = (int64_t)(b->load[i].p_offset + (link - b->load[i].p_vaddr));
	elf_end(e);
	if (!b->nload || !b->start || off < 0)
		rw_die(RW_REFUSED, "govrt-static has no entry or no link record: rebuild govrewrite");
	b->link_off = (size_t)off;
}

/* Places the blob at `vaddr` (file offset `off`, same page offset) and
 * fills a private copy with the link record for OUT. Each segment's
 * zero-filled tail (.bss) is written out as zeros, so OUT's loader has
 * nothing to clear in a segment that is not the last. */
uint8_t *rw_static_place(struct rw_static *b, uint64_t vaddr, uint64_t off,
			 uint64_t hdr_vaddr, uint64_t old_entry)
{
	b->vaddr = vaddr;
	b->off = off;
	uint8_t *copy = calloc(1, b->file_end);
	if (!copy)
		rw_die(RW_IO, "out of memory");
	for (size_t i = 0; i < b->nload; i++)
		memcpy(copy + b->load[i].p_offset, b->bytes + b->load[i].p_offset, b->load[i].p_filesz);
	struct gov_static_link l = { .magic = GOV_STATIC_LINK_MAGIC, .version = GOV_REWRITE_VERSION,
				     .base = vaddr, .hdr = hdr_vaddr, .entry = old_entry };
	memcpy(copy + b->link_off, &l, sizeof l);
	return copy;
}

/* The blob's PT_LOADs as OUT maps them. */
size_t rw_static_phdrs(const struct rw_static *b, Elf64_Phdr *o)
{
	for (size_t i = 0; i < b->nload; i++) {
		const GElf_Phdr *p = &b->load[i];
		o[i] = (Elf64_Phdr){ PT_LOAD, p->p_flags, b->off + p->p_offset, b->vaddr + p->p_vaddr,
				     b->vaddr + p->p_vaddr, p->p_memsz, p->p_memsz, PAGE };
	}
	return b->nload;
}
