/* govctl/sitetable.h - a module's site table (include/gov/abi.h, section
 * gov_sites) read from its ELF file without running it, so that govctl can
 * learn what a binary really calls.
 *
 * Reads x86-64 ELF executables (PIE or not), shared objects and relocatable
 * objects (.o). The records' pointers are resolved the way the loader (or the
 * linker, for a .o) would resolve them: absolute addresses as they stand,
 * R_X86_64_RELATIVE and R_X86_64_64 relocations applied. Every address and
 * size is checked against the file: a truncated or hostile file gives an
 * error, never a crash. */
#ifndef GOVCTL_SITETABLE_H
#define GOVCTL_SITETABLE_H

#include <stddef.h>
#include <stdint.h>

/* One site as the program would see it after govrt prepared it: a site
 * emitted with id 0 has its gov_site_id(), and a raw syscall site without a
 * callee has the syscall's name. */
struct gov_sitetable_site {
	uint64_t id;
	int kind;      /* enum gov_site_kind */
	int ret_conv;  /* enum gov_ret_conv */
	int nparams;
	int32_t sysno; /* or -1 */
	char *caller;  /* each NULL when the record holds NULL (or, for callee, */
	char *callee;  /* a syscall the project's table does not know) */
	char *types;
	char *file;
	uint32_t line;
};

struct gov_sitetable {
	struct gov_sitetable_site *sites;
	size_t n;
	const char *what;   /* "PIE executable", "shared object", "executable",
			     * "relocatable object" */
	size_t relocations; /* relocations applied to the table's pointers */
};

/* Fills *out with the sites of the ELF file at path. Returns 0, or -1 with
 * "path: what is wrong" in err (not an ELF file, no gov_sites section, a
 * pointer outside the file, ...) and *out empty. */
int gov_sitetable_read(const char *path, struct gov_sitetable *out, char *err, size_t errlen);
void gov_sitetable_free(struct gov_sitetable *t);

#endif
