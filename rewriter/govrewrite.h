/* rewriter/govrewrite.h - what govrewrite's files share: the options, the
 * input module as read (elfin.c), the sites found in it, and the writer of
 * the output (elfout.c). Not used by govrt: the engine (engine.h) is the
 * only part of the rewriter that runs inside programs. */
#ifndef GOV_REWRITER_GOVREWRITE_H
#define GOV_REWRITER_GOVREWRITE_H

#include <gelf.h>
#include <elfutils/libdw.h>
#include <stddef.h>
#include <stdint.h>
#include "engine.h"

/* Exit codes (rewriter/README.md). */
enum { RW_OK = 0, RW_USAGE = 1, RW_REFUSED = 2, RW_IO = 3 };

struct rw_opts {
	const char *in, *out;
	int syscalls;           /* 0 none, 1 all, 2 the list in sysnos */
	unsigned char sysnos[1024];
	char **calls;           /* --calls names */
	size_t ncalls;
	const char *report;     /* NULL, "-" or a file */
	const char *resource;
	int dry_run;
	int add_needed;         /* DT_NEEDED libgovrt.so.1 (dynamic modules) */
	int self_start;         /* libc.so.6 dlopens libgovrt itself (elfout.c) */
};

/* govrt-static as placed in a static OUT (static.c). */
#define RW_STATIC_MAX_LOADS 4
struct rw_static {
	const uint8_t *bytes;   /* the blob as built (an ELF linked at 0) */
	size_t size;
	GElf_Phdr load[RW_STATIC_MAX_LOADS];
	size_t nload;
	uint64_t span;          /* bytes of address space it takes */
	uint64_t file_end;      /* bytes of the file its PT_LOADs map */
	uint64_t start;         /* its entry, relative to the blob */
	size_t link_off;        /* file offset of struct gov_static_link */
	uint64_t vaddr, off;    /* where OUT has it */
};

struct rw_sym {
	uint64_t addr, size;
	const char *name;
};

/* One executable range scanned (a section, or a PF_X segment). */
struct rw_range {
	uint64_t addr;
	uint64_t off;           /* in the file */
	size_t len;
	const char *name;
};

struct rw_callee {
	uint64_t addr;          /* a PLT entry or the function itself */
	const char *name;
};

struct rw_input {
	const char *path;
	const uint8_t *img;     /* the whole file, mapped read-only */
	size_t size;
	int fd;
	Elf *elf;
	GElf_Ehdr eh;
	GElf_Phdr *ph;
	size_t phnum;
	int dynamic;            /* has PT_DYNAMIC */
	struct rw_range *ranges;
	size_t nranges;
	struct rw_sym *syms;    /* functions, sorted by address */
	size_t nsyms;
	int have_symtab;        /* a full .symtab: code outside its functions is not code */
	uint64_t *targets;      /* known jump targets */
	size_t ntargets, captargets;
	struct rw_callee *callees;
	size_t ncallees;
	Dwarf *dw;              /* NULL without DWARF */
	size_t exec_bytes;      /* bytes of executable code scanned */
};

struct rw_site {
	struct gre_site g;
	size_t range;           /* index in rw_input.ranges */
	const char *caller;     /* enclosing symbol, or "?" */
	const char *callee;
	const char *file;       /* from DWARF, or "?" */
	uint32_t line;
	uint64_t id;
	uint64_t tramp;         /* trampoline address once laid out */
};

__attribute__((noreturn, format(printf, 2, 3)))
void rw_die(int code, const char *fmt, ...);
__attribute__((format(printf, 1, 2)))
void rw_warn(const char *fmt, ...);

/* elfin.c: reads and checks IN (rw_die on anything wrong). */
void rw_read_input(struct rw_input *in, const struct rw_opts *o);
const char *rw_caller_of(const struct rw_input *in, uint64_t addr);
int rw_in_function(const struct rw_input *in, uint64_t addr); /* a sized function holds it */
void rw_source_of(const struct rw_input *in, uint64_t addr, const char **file, uint32_t *line);
/* The file offset of a virtual address inside a PT_LOAD; -1 if none. */
int64_t rw_offset_of(const struct rw_input *in, uint64_t addr);

/* static.c: a static executable carries govrt-static (docs/rewrite.md). */
int rw_static_wanted(const struct rw_input *in);
void rw_static_load(struct rw_static *b);
uint8_t *rw_static_place(struct rw_static *b, uint64_t vaddr, uint64_t off,
			 uint64_t hdr_vaddr, uint64_t old_entry);
size_t rw_static_phdrs(const struct rw_static *b, Elf64_Phdr *o);

/* elfout.c: lays out the new segments, writes the trampolines and patches,
 * and writes OUT atomically. Returns the number of sites patched. */
size_t rw_write_output(struct rw_input *in, const struct rw_opts *o,
		       struct rw_site *sites, size_t nsites);
/* Set by rw_write_output: the govrt-static it embedded (size 0: none). */
extern struct rw_static rw_embedded;
/* Set by rw_write_output: OUT is a libc.so.6 that starts govrt itself. */
extern int rw_self_started;

#endif
