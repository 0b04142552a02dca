/* rewriter/elfin.c - govrewrite's reading of IN: checks that it is an
 * x86-64 executable or shared object whose every header lies inside the
 * file, and gathers what the engine needs: the executable ranges, the known
 * jump targets (symbols, entry point, DWARF functions, .eh_frame_hdr's
 * function starts, addresses in RELATIVE relocations), the addresses of the
 * functions named by --calls (their PLT entries, their GOT slots, or
 * themselves), and the
 * symbols and DWARF lines that name a site. Not for writing: elfout.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "govrewrite.h"
#include "gov/rewrite.h"

static void add_target(struct rw_input *in, uint64_t a)
{
	if (in->ntargets == in->captargets) {
		in->captargets = in->captargets ? in->captargets * 2 : 1024;
		in->targets = realloc(in->targets, in->captargets * sizeof *in->targets);
		if (!in->targets)
			rw_die(RW_IO, "out of memory");
	}
	in->targets[in->ntargets++] = a;
}

/* IN is mapped, not read: only the pages looked at are touched. The
 * mapping is private and read-only: IN cannot change through it. */
static void read_file(struct rw_input *in)
{
	in->fd = open(in->path, O_RDONLY | O_CLOEXEC);
	if (in->fd < 0)
		rw_die(RW_REFUSED, "%s: cannot open: %s", in->path, strerror(errno));
	struct stat st;
	if (fstat(in->fd, &st) < 0 || !S_ISREG(st.st_mode))
		rw_die(RW_REFUSED, "%s: not a regular file", in->path);
	in->size = (size_t)st.st_size;
	if (!in->size) {
		static uint8_t empty[1];
		in->img = empty;
		return;
	}
	in->img = mmap(NULL, in->size, PROT_READ, MAP_PRIVATE, in->fd, 0);
	if (in->img == MAP_FAILED)
		rw_die(RW_IO, "%s: cannot map %zu bytes: %s", in->path, in->size, strerror(errno));
}

static const char *machine_name(unsigned m)
{
	switch (m) {
	case EM_386: return "i386";
	case EM_ARM: return "arm";
	case EM_AARCH64: return "aarch64";
	case EM_RISCV: return "riscv";
	case EM_PPC64: return "ppc64";
	case EM_S390: return "s390";
	default: return "another architecture";
	}
}

static int inside(const struct rw_input *in, uint64_t off, uint64_t len)
{
	return off <= in->size && len <= in->size - off;
}

/* The identification and the headers, each checked against the file. */
static void check_headers(struct rw_input *in)
{
	const uint8_t *id = in->img;
	if (in->size < EI_NIDENT || memcmp(id, ELFMAG, SELFMAG) != 0)
		rw_die(RW_REFUSED, "%s: not an ELF file (no \\177ELF magic at offset 0)", in->path);
	if (id[EI_CLASS] != ELFCLASS64) {
		unsigned m = in->size >= 20 ? (unsigned)(id[18] | id[19] << 8) : 0;
		rw_die(RW_REFUSED, "%s: a 32-bit ELF file (%s): govrewrite rewrites x86-64 only",
		       in->path, machine_name(m));
	}
	if (id[EI_DATA] != ELFDATA2LSB)
		rw_die(RW_REFUSED, "%s: a big-endian ELF file: govrewrite rewrites x86-64 only", in->path);
	if (in->size < sizeof(Elf64_Ehdr))
		rw_die(RW_REFUSED, "%s: truncated: %zu bytes, shorter than an ELF header (64)",
		       in->path, in->size);
	in->elf = elf_memory((char *)in->img, in->size);
	if (!in->elf || !gelf_getehdr(in->elf, &in->eh))
		rw_die(RW_REFUSED, "%s: not a readable ELF file: %s", in->path, elf_errmsg(-1));
	if (in->eh.e_machine != EM_X86_64)
		rw_die(RW_REFUSED, "%s: machine %s (e_machine %u): govrewrite rewrites x86-64 only",
		       in->path, machine_name(in->eh.e_machine), in->eh.e_machine);
	if (in->eh.e_type == ET_REL)
		rw_die(RW_REFUSED, "%s: a relocatable object (.o): link it first, then rewrite the "
		       "executable or shared object", in->path);
	if (in->eh.e_type != ET_EXEC && in->eh.e_type != ET_DYN)
		rw_die(RW_REFUSED, "%s: ELF type %u is neither an executable nor a shared object",
		       in->path, in->eh.e_type);
	if (in->eh.e_phentsize != sizeof(Elf64_Phdr) || !in->eh.e_phnum ||
	    !inside(in, in->eh.e_phoff, (uint64_t)in->eh.e_phnum * sizeof(Elf64_Phdr)))
		rw_die(RW_REFUSED, "%s: truncated or corrupt: the program headers (offset %llu, "
		       "%u entries) are not inside the file (%zu bytes)", in->path,
		       (unsigned long long)in->eh.e_phoff, in->eh.e_phnum, in->size);
	if (in->eh.e_shnum &&
	    !inside(in, in->eh.e_shoff, (uint64_t)in->eh.e_shnum * in->eh.e_shentsize))
		rw_die(RW_REFUSED, "%s: truncated: the section headers (offset %llu, %u entries) "
		       "are not inside the file (%zu bytes)", in->path,
		       (unsigned long long)in->eh.e_shoff, in->eh.e_shnum, in->size);
}

static void read_phdrs(struct rw_input *in)
{
	in->phnum = in->eh.e_phnum;
	in->ph = calloc(in->phnum, sizeof *in->ph);
	if (!in->ph)
		rw_die(RW_IO, "out of memory");
	int loads = 0;
	for (size_t i = 0; i < in->phnum; i++) {
		GElf_Phdr *p = &in->ph[i];
		if (!gelf_getphdr(in->elf, (int)i, p))
			rw_die(RW_REFUSED, "%s: program header %zu unreadable: %s", in->path, i,
			       elf_errmsg(-1));
		if (p->p_type == PT_GOV_REWRITE)
			rw_die(RW_REFUSED, "%s: already rewritten by govrewrite (it has a "
			       "PT_GOV_REWRITE header); rewrite the original instead", in->path);
		if (p->p_type == PT_DYNAMIC)
			in->dynamic = 1;
		if (p->p_type != PT_LOAD)
			continue;
		loads++;
		if (!inside(in, p->p_offset, p->p_filesz))
			rw_die(RW_REFUSED, "%s: truncated: segment %zu (PT_LOAD, file bytes %llu..%llu) "
			       "goes past the end of the file (%zu bytes)", in->path, i,
			       (unsigned long long)p->p_offset,
			       (unsigned long long)(p->p_offset + p->p_filesz), in->size);
	}
	if (!loads)
		rw_die(RW_REFUSED, "%s: no loadable segment", in->path);
}

int64_t rw_offset_of(const struct rw_input *in, uint64_t addr)
{
	for (size_t i = 0; i < in->phnum; i++) {
		const GElf_Phdr *p = &in->ph[i];
		if (p->p_type == PT_LOAD && addr >= p->p_vaddr && addr - p->p_vaddr < p->p_filesz)
			return (int64_t)(addr - p->p_vaddr + p->p_offset);
	}
	return -1;
}

static void add_range(struct rw_input *in, uint64_t addr, uint64_t off, size_t len,
		      const char *name)
{
	struct rw_range *r = realloc(in->ranges, (in->nranges + 1) * sizeof *r);
	if (!r)
		rw_die(RW_IO, "out of memory");
	in->ranges = r;
	r[in->nranges++] = (struct rw_range){ addr, off, len, name };
	in->exec_bytes += len;
}

static const char *sec_name(struct rw_input *in, const GElf_Shdr *sh)
{
	size_t shstrndx;
	if (elf_getshdrstrndx(in->elf, &shstrndx) < 0)
		return "";
	const char *n = elf_strptr(in->elf, shstrndx, sh->sh_name);
	return n ? n : "";
}

/* Executable sections (the PLT excepted: its stubs are jump targets one
 * after another), or, in a file without section headers, PF_X segments. */
static void find_ranges(struct rw_input *in)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(in->elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_EXECINSTR) || !sh.sh_size)
			continue;
		const char *name = sec_name(in, &sh);
		if (strncmp(name, ".plt", 4) == 0)
			continue;
		if (!inside(in, sh.sh_offset, sh.sh_size))
			rw_die(RW_REFUSED, "%s: truncated: section %s (file bytes %llu..%llu) goes past "
			       "the end of the file (%zu bytes)", in->path, name,
			       (unsigned long long)sh.sh_offset,
			       (unsigned long long)(sh.sh_offset + sh.sh_size), in->size);
		if (rw_offset_of(in, sh.sh_addr) != (int64_t)sh.sh_offset)
			rw_die(RW_REFUSED, "%s: section %s is not where its segment maps it", in->path, name);
		add_range(in, sh.sh_addr, sh.sh_offset, sh.sh_size, name);
	}
	if (in->nranges)
		return;
	for (size_t i = 0; i < in->phnum; i++) {
		const GElf_Phdr *p = &in->ph[i];
		if (p->p_type == PT_LOAD && (p->p_flags & PF_X) && p->p_filesz)
			add_range(in, p->p_vaddr, p->p_offset, p->p_filesz, "PF_X segment");
	}
	if (!in->nranges)
		rw_die(RW_REFUSED, "%s: no executable code (no SHF_EXECINSTR section, no PF_X segment)",
		       in->path);
}

static int cmp_sym(const void *a, const void *b)
{
	const struct rw_sym *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int in_ranges(const struct rw_input *in, uint64_t a)
{
	for (size_t i = 0; i < in->nranges; i++)
		if (a >= in->ranges[i].addr && a - in->ranges[i].addr < in->ranges[i].len)
			return 1;
	return 0;
}

static void note_callee(struct rw_input *in, const struct rw_opts *o, uint64_t addr,
			const char *name)
{
	for (size_t i = 0; i < o->ncalls; i++) {
		if (strcmp(o->calls[i], name) != 0)
			continue;
		struct rw_callee *c = realloc(in->callees, (in->ncallees + 1) * sizeof *c);
		if (!c)
			rw_die(RW_IO, "out of memory");
		in->callees = c;
		c[in->ncallees++] = (struct rw_callee){ addr, o->calls[i] };
		return;
	}
}

/* .symtab and .dynsym: every defined code symbol is a jump target; named
 * functions name the sites inside them; --calls functions defined here are
 * call targets themselves. */
static void read_symbols(struct rw_input *in, const struct rw_opts *o)
{
	size_t cap = 0;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(in->elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		in->have_symtab |= sh.sh_type == SHT_SYMTAB;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d || !sh.sh_entsize)
			continue;
		size_t n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 1; i < n; i++) {
			GElf_Sym s;
			if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF || !s.st_value)
				continue;
			int t = GELF_ST_TYPE(s.st_info);
			if (t != STT_FUNC && t != STT_GNU_IFUNC && t != STT_NOTYPE)
				continue;
			if (!in_ranges(in, s.st_value))
				continue;
			add_target(in, s.st_value);
			const char *name = elf_strptr(in->elf, sh.sh_link, s.st_name);
			if (!name || !*name || t == STT_NOTYPE)
				continue;
			if (in->nsyms == cap) {
				cap = cap ? cap * 2 : 1024;
				in->syms = realloc(in->syms, cap * sizeof *in->syms);
				if (!in->syms)
					rw_die(RW_IO, "out of memory");
			}
			in->syms[in->nsyms++] = (struct rw_sym){ s.st_value, s.st_size, name };
			if (t == STT_FUNC)
				note_callee(in, o, s.st_value, name);
		}
	}
	if (in->nsyms)
		qsort(in->syms, in->nsyms, sizeof *in->syms, cmp_sym);
}

static Elf_Scn *find_section(struct rw_input *in, const char *want, GElf_Shdr *out)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(in->elf, scn))) {
		if (gelf_getshdr(scn, out) && strcmp(sec_name(in, out), want) == 0)
			return scn;
	}
	return NULL;
}

/* The function starts of .eh_frame_hdr's search table (present even in
 * stripped files), when it uses the usual encoding (datarel sdata4). */
static void read_eh_frame_hdr(struct rw_input *in)
{
	GElf_Shdr sh;
	if (!find_section(in, ".eh_frame_hdr", &sh) || sh.sh_type != SHT_PROGBITS ||
	    !inside(in, sh.sh_offset, sh.sh_size) || sh.sh_size < 12)
		return;
	const uint8_t *h = in->img + sh.sh_offset;
	if (h[0] != 1 || h[2] != 0x03 || h[3] != 0x3b)
		return;
	uint32_t count;
	memcpy(&count, h + 8, 4);
	if ((uint64_t)count * 8 > sh.sh_size - 12)
		return;
	for (uint32_t i = 0; i < count; i++) {
		int32_t loc;
		memcpy(&loc, h + 12 + 8 * (size_t)i, 4);
		add_target(in, sh.sh_addr + (int64_t)loc);
	}
}

/* Addresses the loader writes into data (function pointers, ifunc
 * resolvers): RELATIVE and IRELATIVE addends that point at code. */
static void read_relocations(struct rw_input *in)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(in->elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d || !sh.sh_entsize)
			continue;
		size_t n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < n; i++) {
			GElf_Rela r;
			if (!gelf_getrela(d, (int)i, &r))
				continue;
			unsigned t = GELF_R_TYPE(r.r_info);
			if ((t == R_X86_64_RELATIVE || t == R_X86_64_IRELATIVE) &&
			    in_ranges(in, (uint64_t)r.r_addend))
				add_target(in, (uint64_t)r.r_addend);
		}
	}
}

/* The GOT slot of each --calls function imported through the PLT or
 * called through the slot directly (`call *f@GOTPCREL(%rip)`, -fno-plt):
 * the slot is a callee address too (the engine matches it against the
 * memory operand of `call *slot(%rip)`), and so is every PLT entry that
 * jumps through it. A slot is data, never code, so it cannot be mistaken
 * for a direct call's target. */
static void plt_callees(struct rw_input *in, const struct rw_opts *o)
{
	if (!o->ncalls)
		return;
	struct { uint64_t slot; const char *name; } *slots = NULL;
	size_t nslots = 0;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(in->elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		Elf_Scn *symscn = elf_getscn(in->elf, sh.sh_link);
		GElf_Shdr symsh;
		Elf_Data *d = elf_getdata(scn, NULL), *sd = symscn ? elf_getdata(symscn, NULL) : NULL;
		if (!d || !sd || !gelf_getshdr(symscn, &symsh))
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rela r;
			GElf_Sym s;
			unsigned t;
			if (!gelf_getrela(d, (int)i, &r))
				continue;
			t = GELF_R_TYPE(r.r_info);
			if ((t != R_X86_64_JUMP_SLOT && t != R_X86_64_GLOB_DAT) ||
			    !gelf_getsym(sd, (int)GELF_R_SYM(r.r_info), &s))
				continue;
			const char *name = elf_strptr(in->elf, symsh.sh_link, s.st_name);
			for (size_t k = 0; name && k < o->ncalls; k++) {
				if (strcmp(name, o->calls[k]) != 0)
					continue;
				slots = realloc(slots, (nslots + 1) * sizeof *slots);
				if (!slots)
					rw_die(RW_IO, "out of memory");
				slots[nslots].slot = r.r_offset;
				slots[nslots++].name = o->calls[k];
				/* -fno-plt code calls through the slot itself */
				note_callee(in, o, r.r_offset, o->calls[k]);
			}
		}
	}
	/* a PLT entry is `jmp *slot(%rip)` (maybe after endbr64 / with bnd),
	 * in an entry of sh_entsize (or 16) bytes */
	scn = NULL;
	while (nslots && (scn = elf_nextscn(in->elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || strncmp(sec_name(in, &sh), ".plt", 4) != 0 ||
		    !inside(in, sh.sh_offset, sh.sh_size))
			continue;
		uint64_t esz = sh.sh_entsize ? sh.sh_entsize : 16;
		const uint8_t *p = in->img + sh.sh_offset;
		for (uint64_t off = 0; off + 6 <= sh.sh_size; off++) {
			if (p[off] != 0xff || p[off + 1] != 0x25)
				continue;
			int32_t disp;
			memcpy(&disp, p + off + 2, 4);
			uint64_t slot = sh.sh_addr + off + 6 + (int64_t)disp;
			for (size_t k = 0; k < nslots; k++)
				if (slots[k].slot == slot)
					note_callee(in, o, sh.sh_addr + off / esz * esz, slots[k].name);
		}
	}
	free(slots);
}

static int dwarf_func(Dwarf_Die *die, void *arg)
{
	Dwarf_Addr pc;
	if (dwarf_entrypc(die, &pc) == 0)
		add_target(arg, pc);
	return DWARF_CB_OK;
}

/* DWARF, where present: every function's entry is a target; the line
 * table names the sites. */
static void read_dwarf(struct rw_input *in)
{
	in->dw = dwarf_begin_elf(in->elf, DWARF_C_READ, NULL);
	if (!in->dw)
		return;
	Dwarf_Off off = 0, next;
	size_t hsize;
	while (dwarf_nextcu(in->dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;
		if (dwarf_offdie(in->dw, off + hsize, &cu))
			dwarf_getfuncs(&cu, dwarf_func, in, 0);
		off = next;
	}
}

void rw_read_input(struct rw_input *in, const struct rw_opts *o)
{
	elf_version(EV_CURRENT);
	in->path = o->in;
	read_file(in);
	check_headers(in);
	read_phdrs(in);
	find_ranges(in);
	add_target(in, in->eh.e_entry);
	read_symbols(in, o);
	read_eh_frame_hdr(in);
	read_relocations(in);
	plt_callees(in, o);
	read_dwarf(in);
}

const char *rw_caller_of(const struct rw_input *in, uint64_t addr)
{
	size_t lo = 0, hi = in->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (in->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* the last symbol at or before addr that covers it (or has no size) */
	for (size_t k = lo; k-- > 0;) {
		const struct rw_sym *s = &in->syms[k];
		if (!s->size || addr - s->addr < s->size)
			return s->name;
		if (lo - k > 8)
			break;
	}
	return "?";
}

int rw_in_function(const struct rw_input *in, uint64_t addr)
{
	size_t lo = 0, hi = in->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (in->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k-- > 0 && lo - k <= 64;)
		if (addr - in->syms[k].addr < in->syms[k].size)
			return 1;
	return 0;
}

void rw_source_of(const struct rw_input *in, uint64_t addr, const char **file, uint32_t *line)
{
	*file = "?";
	*line = 0;
	Dwarf_Die cu;
	if (!in->dw || !dwarf_addrdie(in->dw, addr, &cu))
		return;
	Dwarf_Line *l = dwarf_getsrc_die(&cu, addr);
	int n;
	if (!l || dwarf_lineno(l, &n) != 0)
		return;
	const char *f = dwarf_linesrc(l, NULL, NULL);
	if (f)
		*file = f;
	*line = (uint32_t)n;
}
