/* clang-plugin/govintercept-llvm.h - what the parts of govintercept-llvm.so
 * share.
 *
 *   options.cc    the -mllvm -gov-* options, their checks and the help text
 *   exports.cc    -gov-exports-of: govctl's export list as targets
 *   (and plugin-common/, shared with the GCC plugin: the syscall tables,
 *   reading a targets-file, running govctl)
 *   pragma.cc     #pragma gov_native
 *   frontend.cc   the clang half: the gov_native attribute and an AST pass
 *                 that finds every site of the unit and describes it
 *   types.cc      a clang type -> Rhodes type code (gov/types.def)
 *   pass.cc       the LLVM half: a module pass that rewrites the calls the
 *                 front end described, emits the site table and the
 *                 module's registration, and writes the listing
 *
 * The two halves live in one shared object, loaded twice into one cc1
 * process (-Xclang -load for clang, -fpass-plugin for LLVM); the dynamic
 * loader maps it once, so they share the globals declared here.
 *
 * Not for use outside clang-plugin/: the contract with govrt is gov/abi.h.
 */
#ifndef GOVINTERCEPT_LLVM_H
#define GOVINTERCEPT_LLVM_H

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "plugin_common.h"   /* plugin-common/: the tables, targets-file, govctl */

#define GOV_PLUGIN_NAME "govintercept"

/* ---- options.cc ---- */

struct gov_options {
	std::string resource;
	std::vector<std::string> targets;     /* targets, targets-file, exports-of */
	std::vector<gov_target_origin> target_origins;  /* one per target */
	std::vector<std::string> headers;     /* targets-header=, canonical paths */
	std::vector<std::string> header_args; /* ... as the user spelled them */
	std::vector<std::string> exports_of;  /* resources */
	std::string store, govctl;            /* for exports-of */
	bool warn_unmatched = true;
	gov_syscall_mode syscalls = GOV_SYSCALLS_NONE;
	std::set<std::string> syscall_names;
	std::string list_path;
	bool verbose = false;
	bool verify = false;
};
extern gov_options gov_opts;

/* Reads the -mllvm options into gov_opts; each problem is one line in
 * *errors ("what: why"). Called once per compilation by the front end. */
void gov_load_options(std::vector<std::string> *errors);
void gov_add_target(const std::string &glob, gov_target_origin origin);
/* exports-of: runs govctl once per resource, adds the names as targets */
void gov_load_exports(std::vector<std::string> *errors);
extern const char gov_help_text[];

/* syscalls=: is the syscall nr, or a call to the wrapper named wrapper
 * (nullptr: none), selected? (options.cc) */
bool gov_syscall_selected(int nr, const char *wrapper);

/* ---- sites: found by frontend.cc, rewritten by pass.cc ---- */

struct gov_site_desc {
	int kind = 0;           /* enum gov_site_kind */
	int ret_conv = 0;       /* enum gov_ret_conv */
	int sysno = -1;
	std::string caller, callee, types, file;
	unsigned line = 0, column = 0;
	unsigned order_col = 0;           /* GCC's column, for the ids' order */
	unsigned key_line = 0;            /* the call's own line (line may be
					   * the enclosing call's, as in GCC) */
	uint64_t id = 0;
	/* how the IR call is recognised and rewritten */
	std::set<std::string> caller_ir;  /* IR names of the enclosing function */
	std::string callee_ir;            /* IR name of the callee; "" for asm */
	unsigned first_arg = 0;           /* syscall(2): the number stays */
	int asm_ops[6] = { -1, -1, -1, -1, -1, -1 };  /* asm: input operand per
						       * word, -1: none (zero) */
	unsigned nwords = 0;              /* words the site passes */
	bool used = false;                /* matched to an IR call */
	bool named = false;               /* the user named the callee: warn
					   * when it cannot be a site */
	unsigned loc = 0;                 /* clang's SourceLocation, raw */
};

/* Every site of the unit, keyed by the call's line and column as the IR's
 * debug locations give them. */
struct gov_unit {
	bool seen = false;                 /* the front end ran for this unit */
	bool has_locations = false;        /* clang emits !dbg locations */
	std::multimap<std::pair<unsigned, unsigned>, gov_site_desc> sites;
	std::string main_file;
};
extern gov_unit gov_this_unit;

/* ---- ids (shared by both halves) ---- */
void gov_assign_ids(std::vector<gov_site_desc *> &sites);

#endif
