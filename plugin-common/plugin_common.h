/* plugin-common/plugin_common.h - what the GCC plugin (gcc-plugin/) and the
 * clang/LLVM plugin (clang-plugin/) share that has nothing to do with either
 * compiler: the project's two syscall tables as lookups, reading a
 * targets-file, and asking govctl for a resource's exports. Both plugins
 * compile these sources with their own flags, so they use only the C++
 * standard library and POSIX.
 *
 * Not here: anything that sees a compiler's trees or IR, diagnostics (each
 * plugin words its own errors around what these return), the options.
 */
#ifndef GOV_PLUGIN_COMMON_H
#define GOV_PLUGIN_COMMON_H

#include <cstddef>
#include <set>
#include <string>
#include <vector>

enum gov_syscall_mode { GOV_SYSCALLS_NONE, GOV_SYSCALLS_ALL, GOV_SYSCALLS_LIST };

/* Where a target came from: only the ones named in an option are worth a
 * warning when they match nothing. */
enum gov_target_origin { GOV_TARGET_FROM_OPTION, GOV_TARGET_FROM_FILE, GOV_TARGET_FROM_EXPORTS };

/* ---- tables.cc: gov/libc.def and gov/syscalls.def ---- */

/* One glibc syscall wrapper: a line of gov/libc.def. */
struct gov_libc_entry {
	const char *name;     /* the glibc function */
	const char *syscall;  /* the x86-64 syscall it makes */
	const char *types;    /* Rhodes type string */
	int ret_conv;         /* enum gov_ret_conv */
	int flags;            /* GOV_LIBC_VARIADIC */
};

const gov_libc_entry *gov_libc_lookup(const char *name);
/* The wrapper of syscall with exactly nparams parameters, whose type codes a
 * syscall(2) site borrows. */
const gov_libc_entry *gov_libc_for_syscall(const char *syscall, size_t nparams);
int gov_syscall_number(const char *name);   /* -1 when unknown */
const char *gov_syscall_name(int nr);       /* NULL when unknown */
/* Does the syscalls= selection (mode and its names) take syscall nr, or a
 * call to the wrapper named wrapper (NULL: none)? */
bool gov_syscall_in(gov_syscall_mode mode, const std::set<std::string> &names, int nr,
		    const char *wrapper);

/* ---- targets.cc ---- */

/* The names of a targets-file: one glob per line, blanks and '#' comments
 * ignored. false with errno set when it cannot be read. */
bool gov_read_targets_file(const char *path, std::vector<std::string> *globs);

/* govctl for exports-of: the one given (non-empty), else the one installed
 * beside the plugin in plugin_dir (PREFIX/lib/PART -> PREFIX/bin, build/lib
 * -> build/bin), else "govctl" for execvp's PATH search. */
std::string gov_find_govctl(const std::string &given, const std::string &plugin_dir);

/* Runs `govctl [--store STORE] exports RESOURCE` and appends every name it
 * lists, the `# untyped NAME` lines included (docs/abi.md, "Export lists").
 * false with *why when it fails; *not_run tells a govctl that could not be
 * started (the caller's hint: give its path) from one that refused. */
bool gov_exported_names(const std::string &govctl, const std::string &store,
			const std::string &resource, std::vector<std::string> *names,
			std::string *why, bool *not_run);

#endif
