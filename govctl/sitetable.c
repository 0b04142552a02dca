/* govctl/sitetable.c - reads a module's site table (section gov_sites, one
 * struct gov_site per site, include/gov/abi.h) from its ELF file with libelf,
 * without running it. Not for changing a binary: that is the rewriter's job.
 *
 * The records hold pointers to strings (caller, callee, types, file). Where
 * they point depends on how the module was linked:
 *   - a non-PIE executable: absolute addresses, in place;
 *   - a PIE executable or shared object: the loader fills them from .rela.dyn
 *     (R_X86_64_RELATIVE: the addend is the address, the module loaded at 0),
 *     so what sits in the section may be zero; with packed relocations
 *     (.relr.dyn) the address sits in place;
 *   - a relocatable object (.o): sections have no address yet; .rela.gov_sites
 *     points each pointer at a symbol (usually a section's) plus an addend.
 *   - a module rewritten by govrewrite: no gov_sites section; a program
 *     header PT_GOV_REWRITE points at a struct gov_rewrite_hdr (gov/rewrite.h)
 *     whose table and strings hold link-time addresses, in place.
 * This file resolves a pointer to a section (or a segment) and offset and
 * reads the string there. Every index, address and size comes from the file, so each is
 * checked before use. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "gov/abi.h"
#include "gov/rewrite.h"
#include "internal.h"
#include "sitetable.h"

#define SITE_SIZE sizeof(struct gov_site)
_Static_assert(sizeof(struct gov_site) == 64, "docs/abi.md: a site record is 64 bytes");

/* The pointer fields of a record, in struct order. */
enum { P_CALLER, P_CALLEE, P_TYPES, P_FILE, NPTR };
static const size_t ptr_offset[NPTR] = {
	offsetof(struct gov_site, caller), offsetof(struct gov_site, callee),
	offsetof(struct gov_site, types), offsetof(struct gov_site, file),
};
static const char *const ptr_name[NPTR] = { "caller", "callee", "types", "file" };

/* Where a pointer points once relocated: an address in a linked module, or
 * a section and offset in a relocatable object. */
struct target {
	int set;        /* from a relocation (else the value in place counts) */
	int in_section; /* shndx/off valid (relocatable objects) */
	size_t shndx;
	uint64_t value; /* the address, or the offset in shndx */
};

struct table {                  /* one gov_sites section */
	size_t shndx;
	GElf_Shdr shdr;
	const unsigned char *data;
	size_t nsites;
	struct target *fix;     /* [nsites * NPTR], from relocations */
};

struct reader {
	const char *path;
	char *err;
	size_t errlen;
	Elf *elf;
	GElf_Ehdr ehdr;
	size_t shnum, shstrndx;
	struct table *tables;
	size_t ntables;
	size_t relocations;
};

__attribute__((format(printf, 2, 3)))
static int fail(struct reader *r, const char *fmt, ...)
{
	int n = snprintf(r->err, r->errlen, "%s: ", r->path);
	if (n < 0 || (size_t)n >= r->errlen)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int get_shdr(struct reader *r, size_t i, Elf_Scn **scn, GElf_Shdr *shdr)
{
	*scn = elf_getscn(r->elf, i);
	if (!*scn || !gelf_getshdr(*scn, shdr))
		return fail(r, "section header %zu cannot be read (%s); the file is damaged",
			    i, elf_errmsg(-1));
	return 0;
}

/* A section's bytes, checked to lie inside the file. */
static Elf_Data *section_data(struct reader *r, Elf_Scn *scn, const GElf_Shdr *shdr,
			      const char *name)
{
	if (shdr->sh_flags & SHF_COMPRESSED) {
		fail(r, "section %s is compressed; govctl reads only uncompressed sections", name);
		return NULL;
	}
	Elf_Data *d = elf_getdata(scn, NULL);
	if (!d || (shdr->sh_size && (!d->d_buf || d->d_size != shdr->sh_size))) {
		fail(r, "section %s (offset %llu, size %llu) cannot be read: %s; is the file "
		     "truncated?", name, (unsigned long long)shdr->sh_offset,
		     (unsigned long long)shdr->sh_size, d ? "short read" : elf_errmsg(-1));
		return NULL;
	}
	return d;
}

static const char *section_name(struct reader *r, const GElf_Shdr *shdr)
{
	const char *n = elf_strptr(r->elf, r->shstrndx, shdr->sh_name);
	return n ? n : "(unnamed)";
}

static int open_elf(struct reader *r, int fd)
{
	r->elf = elf_begin(fd, ELF_C_READ, NULL);
	if (r->elf && elf_kind(r->elf) == ELF_K_AR)
		return fail(r, "an ar archive (static library), not one module; extract its "
			    "members with `ar x` and give one of them");
	if (!r->elf || elf_kind(r->elf) != ELF_K_ELF)
		return fail(r, "not an ELF file (give an executable, shared object or .o "
			    "built with governed sites)");
	if (gelf_getclass(r->elf) != ELFCLASS64 || !gelf_getehdr(r->elf, &r->ehdr))
		return fail(r, "not a 64-bit ELF file; site tables are defined for x86-64 only");
	if (r->ehdr.e_ident[EI_DATA] != ELFDATA2LSB || r->ehdr.e_machine != EM_X86_64)
		return fail(r, "an ELF file for machine %u, not x86-64; site tables are "
			    "defined for x86-64 only", r->ehdr.e_machine);
	if (r->ehdr.e_type != ET_EXEC && r->ehdr.e_type != ET_DYN && r->ehdr.e_type != ET_REL)
		return fail(r, "ELF type %u is not an executable, shared object or "
			    "relocatable object", r->ehdr.e_type);
	if (elf_getshdrnum(r->elf, &r->shnum) < 0 || elf_getshdrstrndx(r->elf, &r->shstrndx) < 0)
		return fail(r, "its section headers cannot be read (%s); the file is damaged "
			    "or stripped of section headers", elf_errmsg(-1));
	return 0;
}

static int find_rewrite_table(struct reader *r);

static int find_tables(struct reader *r)
{
	for (size_t i = 1; i < r->shnum; i++) {
		Elf_Scn *scn;
		GElf_Shdr shdr;
		if (get_shdr(r, i, &scn, &shdr) < 0)
			return -1;
		const char *name = elf_strptr(r->elf, r->shstrndx, shdr.sh_name);
		if (!name || strcmp(name, GOV_SITES_SECTION) != 0)
			continue;
		if (shdr.sh_type == SHT_NOBITS)
			return fail(r, "section %s has no contents in the file (SHT_NOBITS)",
				    GOV_SITES_SECTION);
		if (shdr.sh_size % SITE_SIZE)
			return fail(r, "section %s is %llu bytes, not a whole number of %zu-byte "
				    "site records (docs/abi.md)", GOV_SITES_SECTION,
				    (unsigned long long)shdr.sh_size, SITE_SIZE);
		if (r->ehdr.e_type != ET_REL && shdr.sh_addr + shdr.sh_size < shdr.sh_addr)
			return fail(r, "section %s's address range wraps around", GOV_SITES_SECTION);
		Elf_Data *d = section_data(r, scn, &shdr, GOV_SITES_SECTION);
		if (!d)
			return -1;
		struct table *t = realloc(r->tables, (r->ntables + 1) * sizeof *t);
		if (!t)
			return fail(r, "out of memory");
		r->tables = t;
		t = &r->tables[r->ntables++];
		*t = (struct table){ .shndx = i, .shdr = shdr, .data = d->d_buf,
				     .nsites = shdr.sh_size / SITE_SIZE };
		t->fix = calloc(t->nsites ? t->nsites * NPTR : 1, sizeof *t->fix);
		if (!t->fix)
			return fail(r, "out of memory for %zu sites", t->nsites);
	}
	if (r->ehdr.e_type != ET_REL && find_rewrite_table(r) < 0)
		return -1;
	if (r->ntables == 0)
		return fail(r, "no %s section: the file declares no governed sites (build it "
			    "with GOV_CALL from gov/govrt.h or a govintercept compiler plugin, "
			    "or rewrite it with govrewrite)", GOV_SITES_SECTION);
	return 0;
}

/* The table and byte offset a relocation at r_offset patches, if any. */
static struct table *table_at(struct reader *r, const GElf_Shdr *rel_shdr, uint64_t r_offset,
			      uint64_t *off)
{
	for (size_t i = 0; i < r->ntables; i++) {
		struct table *t = &r->tables[i];
		if (r->ehdr.e_type == ET_REL) {
			if (rel_shdr->sh_info == t->shndx && r_offset < t->shdr.sh_size) {
				*off = r_offset;
				return t;
			}
		} else if (r_offset >= t->shdr.sh_addr &&
			   r_offset - t->shdr.sh_addr < t->shdr.sh_size) {
			*off = r_offset - t->shdr.sh_addr;
			return t;
		}
	}
	return NULL;
}

static int symbol_target(struct reader *r, const GElf_Shdr *rel_shdr, size_t symidx,
			 int64_t addend, const char *where, struct target *out)
{
	out->set = 1;
	if (symidx == 0) {
		out->value = (uint64_t)addend;
		return 0;
	}
	Elf_Scn *scn;
	GElf_Shdr shdr;
	GElf_Sym sym;
	if (rel_shdr->sh_link == 0 || rel_shdr->sh_link >= r->shnum)
		return fail(r, "%s: relocation names a symbol but its section has no symbol "
			    "table", where);
	if (get_shdr(r, rel_shdr->sh_link, &scn, &shdr) < 0)
		return -1;
	if (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM)
		return fail(r, "%s: relocation's symbol table (section %u) is not a symbol "
			    "table", where, (unsigned)rel_shdr->sh_link);
	Elf_Data *d = section_data(r, scn, &shdr, section_name(r, &shdr));
	if (!d)
		return -1;
	if (symidx > (size_t)INT32_MAX || !gelf_getsym(d, (int)symidx, &sym))
		return fail(r, "%s: relocation names symbol %zu, past the end of its symbol "
			    "table", where, symidx);
	const char *sname = elf_strptr(r->elf, shdr.sh_link, sym.st_name);
	if (sym.st_shndx == SHN_UNDEF)
		return fail(r, "%s: points to undefined symbol '%s', known only when the "
			    "program runs", where, sname ? sname : "?");
	if (sym.st_shndx >= SHN_LORESERVE && sym.st_shndx != SHN_ABS)
		return fail(r, "%s: points to symbol '%s' in special section 0x%x, which "
			    "govctl does not resolve", where, sname ? sname : "?", sym.st_shndx);
	out->value = sym.st_value + (uint64_t)addend;
	if (r->ehdr.e_type == ET_REL) {
		if (sym.st_shndx == SHN_ABS)
			return fail(r, "%s: points to absolute symbol '%s'", where,
				    sname ? sname : "?");
		out->in_section = 1;
		out->shndx = sym.st_shndx;
	}
	return 0;
}

static int apply_rela(struct reader *r, Elf_Scn *scn, const GElf_Shdr *shdr)
{
	const char *name = section_name(r, shdr);
	Elf_Data *d = section_data(r, scn, shdr, name);
	if (!d)
		return -1;
	size_t n = d->d_size / sizeof(Elf64_Rela);
	for (size_t j = 0; j < n; j++) {
		GElf_Rela rela;
		uint64_t off;
		if (!gelf_getrela(d, (int)j, &rela))
			return fail(r, "%s: relocation %zu cannot be read (%s)", name, j,
				    elf_errmsg(-1));
		struct table *t = table_at(r, shdr, rela.r_offset, &off);
		if (!t)
			continue;
		unsigned type = (unsigned)GELF_R_TYPE(rela.r_info);
		if (type == R_X86_64_NONE)
			continue;
		size_t site = off / SITE_SIZE, field = NPTR;
		for (size_t k = 0; k < NPTR; k++)
			if (off % SITE_SIZE == ptr_offset[k])
				field = k;
		char where[160];
		snprintf(where, sizeof where, "%s site %zu (relocation %zu of %s)",
			 GOV_SITES_SECTION, site, j, name);
		if (field == NPTR)
			return fail(r, "%s: patches byte %llu of the record, which is not one "
				    "of its pointers", where, (unsigned long long)(off % SITE_SIZE));
		struct target *tg = &t->fix[site * NPTR + field];
		*tg = (struct target){ 0 };
		if (type == R_X86_64_RELATIVE && r->ehdr.e_type != ET_REL) {
			tg->set = 1;
			tg->value = (uint64_t)rela.r_addend;
		} else if (type == R_X86_64_64) {
			if (symbol_target(r, shdr, GELF_R_SYM(rela.r_info), rela.r_addend,
					  where, tg) < 0)
				return -1;
		} else {
			return fail(r, "%s: relocation type %u is not supported (only "
				    "R_X86_64_RELATIVE and R_X86_64_64)", where, type);
		}
		r->relocations++;
	}
	return 0;
}

/* A linked module's dynamic relocations (allocated RELA sections), or the
 * RELA sections of a .o that apply to a gov_sites section. Static
 * relocations kept in a linked file (ld --emit-relocs) are already applied. */
static int apply_relocations(struct reader *r)
{
	for (size_t i = 1; i < r->shnum; i++) {
		Elf_Scn *scn;
		GElf_Shdr shdr;
		if (get_shdr(r, i, &scn, &shdr) < 0)
			return -1;
		if (shdr.sh_type != SHT_RELA) /* x86-64 uses no SHT_REL */
			continue;
		if (r->ehdr.e_type == ET_REL ? shdr.sh_info == 0 : !(shdr.sh_flags & SHF_ALLOC))
			continue;
		if (apply_rela(r, scn, &shdr) < 0)
			return -1;
	}
	return 0;
}

/* The file's bytes at link-time address addr, inside a PT_LOAD's file
 * part; *avail = how many follow. NULL when no segment holds it. */
static const unsigned char *segment_bytes(struct reader *r, uint64_t addr, size_t *avail)
{
	size_t nph = 0, fsize = 0;
	const unsigned char *file = (const unsigned char *)elf_rawfile(r->elf, &fsize);
	if (!file || elf_getphdrnum(r->elf, &nph) < 0)
		return NULL;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(r->elf, (int)i, &ph) || ph.p_type != PT_LOAD ||
		    addr < ph.p_vaddr || addr - ph.p_vaddr >= ph.p_filesz ||
		    ph.p_offset > fsize || ph.p_filesz > fsize - ph.p_offset)
			continue;
		*avail = (size_t)(ph.p_filesz - (addr - ph.p_vaddr));
		return file + ph.p_offset + (addr - ph.p_vaddr);
	}
	return NULL;
}

/* A rewritten module's table (gov/rewrite.h), found through PT_GOV_REWRITE. */
static int find_rewrite_table(struct reader *r)
{
	size_t nph = 0, fsize = 0;
	const unsigned char *file = (const unsigned char *)elf_rawfile(r->elf, &fsize);
	if (!file || elf_getphdrnum(r->elf, &nph) < 0)
		return 0;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(r->elf, (int)i, &ph) || ph.p_type != PT_GOV_REWRITE)
			continue;
		struct gov_rewrite_hdr h;
		if (ph.p_filesz < sizeof h || ph.p_offset > fsize || sizeof h > fsize - ph.p_offset)
			return fail(r, "PT_GOV_REWRITE header (offset %llu) is not inside the file",
				    (unsigned long long)ph.p_offset);
		memcpy(&h, file + ph.p_offset, sizeof h);
		if (h.magic != GOV_REWRITE_MAGIC || h.version != GOV_REWRITE_VERSION)
			return fail(r, "PT_GOV_REWRITE header: magic 0x%x version %u (govctl reads "
				    "0x%x version %u)", h.magic, h.version, GOV_REWRITE_MAGIC,
				    GOV_REWRITE_VERSION);
		size_t avail = 0;
		const unsigned char *sites = h.nsites ? segment_bytes(r, h.sites, &avail) : file;
		if (!sites || avail / SITE_SIZE < h.nsites)
			return fail(r, "PT_GOV_REWRITE header: its %u sites at 0x%llx are not inside "
				    "the file", h.nsites, (unsigned long long)h.sites);
		struct table *t = realloc(r->tables, (r->ntables + 1) * sizeof *t);
		if (!t)
			return fail(r, "out of memory");
		r->tables = t;
		t = &r->tables[r->ntables++];
		*t = (struct table){ .data = sites, .nsites = h.nsites };
		t->shdr.sh_addr = h.sites;
		t->shdr.sh_size = (uint64_t)h.nsites * SITE_SIZE;
		t->fix = calloc(t->nsites ? t->nsites * NPTR : 1, sizeof *t->fix);
		if (!t->fix)
			return fail(r, "out of memory for %zu sites", t->nsites);
	}
	return 0;
}

/* The NUL-terminated string at t, copied; NULL for a null pointer. */
static int read_string(struct reader *r, const struct target *t, const char *where, char **out)
{
	*out = NULL;
	if (r->ehdr.e_type == ET_REL && !t->in_section) {
		if (t->value == 0)
			return 0;
		return fail(r, "%s: holds 0x%llx but has no relocation; a relocatable "
			    "object's pointers need one", where, (unsigned long long)t->value);
	}
	if (!t->in_section && t->value == 0)
		return 0;
	size_t shndx = 0;
	uint64_t off = 0;
	GElf_Shdr shdr;
	Elf_Scn *scn = NULL;
	if (t->in_section) {
		if (t->shndx == 0 || t->shndx >= r->shnum)
			return fail(r, "%s: points into section %zu, which does not exist",
				    where, t->shndx);
		shndx = t->shndx;
		if (get_shdr(r, shndx, &scn, &shdr) < 0)
			return -1;
		off = t->value;
	} else {
		for (size_t i = 1; i < r->shnum && !shndx; i++) {
			if (get_shdr(r, i, &scn, &shdr) < 0)
				return -1;
			if ((shdr.sh_flags & SHF_ALLOC) && shdr.sh_type != SHT_NOBITS &&
			    t->value >= shdr.sh_addr && t->value - shdr.sh_addr < shdr.sh_size) {
				shndx = i;
				off = t->value - shdr.sh_addr;
			}
		}
		size_t avail = 0;
		const char *seg = shndx ? NULL : (const char *)segment_bytes(r, t->value, &avail);
		if (seg) { /* a rewritten module's strings: in its segment, no section */
			const char *nul = memchr(seg, '\0', avail);
			if (!nul)
				return fail(r, "%s: the string at 0x%llx runs past its segment", where,
					    (unsigned long long)t->value);
			*out = strndup(seg, (size_t)(nul - seg));
			return *out ? 0 : fail(r, "out of memory");
		}
		if (!shndx)
			return fail(r, "%s: points to 0x%llx, outside every section the file "
				    "holds", where, (unsigned long long)t->value);
	}
	const char *sname = section_name(r, &shdr);
	if (shdr.sh_type == SHT_NOBITS || off >= shdr.sh_size)
		return fail(r, "%s: points to offset %llu of section %s, outside its contents",
			    where, (unsigned long long)off, sname);
	Elf_Data *d = section_data(r, scn, &shdr, sname);
	if (!d)
		return -1;
	const char *s = (const char *)d->d_buf + off;
	const char *nul = memchr(s, '\0', d->d_size - off);
	if (!nul)
		return fail(r, "%s: the string at offset %llu of section %s runs past its end",
			    where, (unsigned long long)off, sname);
	*out = strndup(s, (size_t)(nul - s));
	if (!*out)
		return fail(r, "out of memory");
	return 0;
}

static int read_site(struct reader *r, const struct table *t, size_t i,
		     struct gov_sitetable_site *s)
{
	const unsigned char *rec = t->data + i * SITE_SIZE;
	struct gov_site raw;
	memcpy(&raw, rec, sizeof raw);
	if (raw.kind != GOV_SITE_CALL && raw.kind != GOV_SITE_SYSCALL)
		return fail(r, "%s site %zu: kind %u is neither call (%d) nor syscall (%d); "
			    "is the section a site table of ABI version %d?", GOV_SITES_SECTION,
			    i, raw.kind, GOV_SITE_CALL, GOV_SITE_SYSCALL, GOV_ABI_VERSION);
	s->id = raw.id;
	s->kind = raw.kind;
	s->ret_conv = raw.ret_conv;
	s->nparams = raw.nparams;
	s->sysno = raw.sysno;
	s->line = raw.line;
	char **dst[NPTR] = { &s->caller, &s->callee, &s->types, &s->file };
	for (size_t k = 0; k < NPTR; k++) {
		struct target tg = t->fix[i * NPTR + k];
		if (!tg.set)
			memcpy(&tg.value, rec + ptr_offset[k], sizeof tg.value);
		char where[96];
		snprintf(where, sizeof where, "%s site %zu: %s", GOV_SITES_SECTION, i, ptr_name[k]);
		if (read_string(r, &tg, where, dst[k]) < 0)
			return -1;
	}
	/* as govrt's prepare_sites() does when it registers the table */
	if (s->kind == GOV_SITE_SYSCALL && !s->callee) {
		const char *name = gov_syscall_name(s->sysno);
		if (name && !(s->callee = strdup(name)))
			return fail(r, "out of memory");
	}
	if (!s->id)
		s->id = gov_site_id(s->file, s->line, s->caller, s->callee);
	return 0;
}

/* ET_DYN is a PIE executable when it asks for an interpreter or says so in
 * DT_FLAGS_1; else a shared object. */
static const char *module_kind(struct reader *r)
{
	if (r->ehdr.e_type == ET_EXEC)
		return "executable";
	if (r->ehdr.e_type == ET_REL)
		return "relocatable object";
	size_t nph = 0;
	if (elf_getphdrnum(r->elf, &nph) == 0)
		for (size_t i = 0; i < nph; i++) {
			GElf_Phdr ph;
			if (gelf_getphdr(r->elf, (int)i, &ph) && ph.p_type == PT_INTERP)
				return "PIE executable";
		}
	for (size_t i = 1; i < r->shnum; i++) {
		Elf_Scn *scn = elf_getscn(r->elf, i);
		GElf_Shdr shdr;
		if (!scn || !gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_DYNAMIC)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		GElf_Dyn dyn;
		for (int j = 0; d && gelf_getdyn(d, j, &dyn); j++)
			if (dyn.d_tag == DT_FLAGS_1 && (dyn.d_un.d_val & DF_1_PIE))
				return "PIE executable";
	}
	return "shared object";
}

void gov_sitetable_free(struct gov_sitetable *t)
{
	for (size_t i = 0; t->sites && i < t->n; i++) {
		free(t->sites[i].caller);
		free(t->sites[i].callee);
		free(t->sites[i].types);
		free(t->sites[i].file);
	}
	free(t->sites);
	*t = (struct gov_sitetable){ 0 };
}

static int read_all(struct reader *r, struct gov_sitetable *out)
{
	if (find_tables(r) < 0 || apply_relocations(r) < 0)
		return -1;
	size_t total = 0;
	for (size_t i = 0; i < r->ntables; i++)
		total += r->tables[i].nsites;
	out->sites = calloc(total ? total : 1, sizeof *out->sites);
	if (!out->sites)
		return fail(r, "out of memory for %zu sites", total);
	for (size_t i = 0; i < r->ntables; i++)
		for (size_t j = 0; j < r->tables[i].nsites; j++)
			if (read_site(r, &r->tables[i], j, &out->sites[out->n++]) < 0)
				return -1;
	out->what = module_kind(r);
	out->relocations = r->relocations;
	return 0;
}

int gov_sitetable_read(const char *path, struct gov_sitetable *out, char *err, size_t errlen)
{
	struct reader r = { .path = path, .err = err, .errlen = errlen };
	*out = (struct gov_sitetable){ 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(&r, "cannot open: %s", strerror(errno));
	struct stat st;
	int rc = -1;
	if (fstat(fd, &st) < 0)
		fail(&r, "cannot stat: %s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		fail(&r, "not a regular file");
	else if (elf_version(EV_CURRENT) == EV_NONE)
		fail(&r, "libelf is too old: %s", elf_errmsg(-1));
	else if (open_elf(&r, fd) == 0)
		rc = read_all(&r, out);
	for (size_t i = 0; i < r.ntables; i++)
		free(r.tables[i].fix);
	free(r.tables);
	if (r.elf)
		elf_end(r.elf);
	close(fd);
	if (rc < 0)
		gov_sitetable_free(out);
	return rc;
}
