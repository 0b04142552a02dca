/* gcc-plugin/govintercept.h - what the parts of govintercept.so share.
 *
 *   govintercept.cc     plugin_init: options, help, the gov_native attribute,
 *                       registering the pass and the callbacks
 *   targets.cc          which callees are sites: target globs, targets-file,
 *                       targets-header, the libc wrapper table, syscalls=
 *   types.cc            a callee's C types -> Rhodes type codes (gov/types.def)
 *   site_table.cc       the site records (gov/abi.h), their ids, the listing,
 *                       and the module's registration constructor
 *   instrument_pass.cc  the GIMPLE pass that rewrites each site
 *   verify_pass.cc      with verify: GCC's SSA and IL verifiers after "ssa"
 *
 * Not for use outside gcc-plugin/: the contract with govrt is gov/abi.h.
 */
#ifndef GOVINTERCEPT_H
#define GOVINTERCEPT_H

#include "gcc-common.h"
#include "plugin_common.h"   /* plugin-common/: the tables, targets-file, govctl */

#define GOV_PLUGIN_NAME "govintercept"

/* ---- options (govintercept.cc) ---- */

struct gov_options {
	std::string resource;                 /* resource=; empty: none built in */
	std::vector<std::string> targets;     /* targets=, targets-file=, exports-of= */
	std::vector<gov_target_origin> target_origins;  /* one per target */
	std::vector<std::string> headers;     /* targets-header=, canonical paths */
	std::vector<std::string> header_args; /* ... as given */
	std::vector<bool> header_matched;     /* ... declared a callee of this unit */
	bool warn_unmatched = true;           /* unmatched=warn|ignore */
	std::vector<std::string> exports_of;  /* exports-of= resources */
	std::string store;                    /* store=, else GOV_STORE (govctl's) */
	std::string govctl;                   /* govctl=: its path */
	gov_syscall_mode syscalls = GOV_SYSCALLS_NONE;
	std::set<std::string> syscall_names;  /* syscalls=NAME:...: syscall or wrapper names */
	std::string list_path;                /* list= */
	bool verbose = false;
	bool verify = false;                  /* run GCC's IL verifiers after the pass */
	bool check_libc = false;              /* compare glibc's prototypes with gov/libc.def */
};
extern gov_options gov_opts;

/* ---- targets.cc ---- */

/* Is fndecl a target? Globs are tried on its identifier, its qualified
 * printable name (C++) and its assembler name. *named: a glob without
 * wildcards matched, i.e. the user named this very function. */
bool gov_target_matches(tree fndecl, bool *named);
/* Is the syscall nr (or a call to the wrapper named wrapper) selected by
 * syscalls=? */
bool gov_syscall_selected(int nr, const char *wrapper);
/* check-libc: warns when decl's prototype maps to other codes than its
 * gov/libc.def line. */
void gov_check_libc_decl(tree decl);
/* Reads a targets-file into the targets; false (with an error emitted)
 * when unreadable. */
bool gov_load_targets_file(const char *path);
/* exports-of=: runs govctl for each resource and adds its exports as
 * targets; false (with an error emitted) when it cannot. */
bool gov_load_exports(const char *plugin_path);
/* Adds one target glob or name. */
void gov_add_target(const std::string &glob, gov_target_origin origin);
/* The targets of one origin that matched no callee of this unit. */
std::vector<std::string> gov_unmatched_targets(gov_target_origin origin);

/* ---- types.cc ---- */

/* The type string of a call: return item, then one item (a code or a
 * struct's layout) per argument from index `first` on. Empty, with *why set, when a type has no Rhodes code. */
std::string gov_call_types(gcall *call, unsigned first, const gov_libc_entry *libc,
			   const char **why);

/* The same for a function's prototype: return code, then one code per
 * declared parameter (check-libc compares it with gov/libc.def). */
std::string gov_prototype_types(tree fntype, const char **why);

/* The number of parameters of a type string (a struct `{...}` is one). */
unsigned gov_types_nparams(const std::string &types);

/* ---- site_table.cc ---- */

struct gov_site_desc {
	int kind;              /* enum gov_site_kind */
	int ret_conv;          /* enum gov_ret_conv */
	int sysno;             /* -1 when none */
	std::string caller, callee, types, file;
	unsigned line, column;
	uint64_t id;
};

/* The printable name of a function, as sites record it. */
std::string gov_function_name(tree fndecl);
/* Gives each site of one function its id: gov_site_id(), and for the second
 * and later sites sharing file, line, caller and callee, "callee#N". */
void gov_assign_ids(std::vector<gov_site_desc *> &sites);
/* Emits the static struct gov_site for d, registers the module once per
 * translation unit, and queues d's line for the listing. */
tree gov_emit_site(const gov_site_desc &d);
/* The fields and declarations the rewriting needs. */
tree gov_site_verdict_field(void);
tree gov_call_type(void);
tree gov_dispatch_decl(void);
/* Appends the queued listing lines to list= (at the end of the unit). */
void gov_write_listing(void);

/* ---- instrument_pass.cc ---- */

opt_pass *gov_make_instrument_pass(gcc::context *ctxt);

/* ---- verify_pass.cc ---- */

/* With verify: GCC's verifiers again after "ssa". */
opt_pass *gov_make_verify_pass(gcc::context *ctxt);

/* ---- govintercept.cc ---- */

/* The attribute that keeps a function's own body uninstrumented. */
bool gov_function_is_native(tree fndecl);

#endif
