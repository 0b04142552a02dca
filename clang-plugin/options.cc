/* clang-plugin/options.cc - the options of govintercept-llvm.so, as LLVM
 * command-line options (-mllvm -gov-KEY=VALUE), their checks and the help.
 *
 * LLVM 14's -fpass-plugin hands a plugin no arguments, and clang's
 * -plugin-arg-NAME takes four words per option; -mllvm options are parsed
 * after -Xclang -load has loaded the plugin, so the plugin's cl::opts are
 * known by then. The values mean exactly what the GCC plugin's
 * -fplugin-arg-govintercept-KEY=VALUE do (gcc-plugin/README.md).
 *
 * Not here: using the options (frontend.cc, pass.cc).
 */
#include "govintercept-llvm.h"
#include "gov/abi.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

#include "llvm/Support/CommandLine.h"

gov_options gov_opts;

namespace cl = llvm::cl;

static cl::OptionCategory category("govintercept (Rhodes) options");

static cl::list<std::string> opt_targets("gov-targets", cl::ZeroOrMore, cl::cat(category),
	cl::value_desc("GLOB[:GLOB...]"), cl::desc("govintercept: calls to functions matching a glob"));
static cl::list<std::string> opt_targets_file("gov-targets-file", cl::ZeroOrMore,
	cl::cat(category), cl::value_desc("PATH"), cl::desc("govintercept: more globs, one per line"));
static cl::list<std::string> opt_targets_header("gov-targets-header", cl::ZeroOrMore,
	cl::cat(category), cl::value_desc("PATH"),
	cl::desc("govintercept: calls to every function declared in that header"));
static cl::opt<std::string> opt_syscalls("gov-syscalls", cl::cat(category),
	cl::value_desc("all|none|NAME[:NAME...]"), cl::desc("govintercept: syscall sites"));
static cl::opt<std::string> opt_resource("gov-resource", cl::cat(category),
	cl::value_desc("NAME"), cl::desc("govintercept: the module's resource"));
static cl::opt<std::string> opt_list("gov-list", cl::cat(category), cl::value_desc("PATH"),
	cl::desc("govintercept: append one line per site to PATH"));
static cl::list<std::string> opt_exports_of("gov-exports-of", cl::ZeroOrMore, cl::cat(category),
	cl::value_desc("RESOURCE"),
	cl::desc("govintercept: calls to every function RESOURCE exports (govctl exports)"));
static cl::opt<std::string> opt_store("gov-store", cl::cat(category), cl::value_desc("URL"),
	cl::desc("govintercept: the rule store -gov-exports-of asks"));
static cl::opt<std::string> opt_govctl("gov-govctl", cl::cat(category), cl::value_desc("PATH"),
	cl::desc("govintercept: the govctl -gov-exports-of runs"));
static cl::opt<std::string> opt_unmatched("gov-unmatched", cl::cat(category),
	cl::value_desc("warn|ignore"),
	cl::desc("govintercept: a warning for targets that match nothing, or none"));
static cl::opt<bool> opt_verbose("gov-verbose", cl::cat(category),
	cl::desc("govintercept: a remark per site and per unmatched bulk-list target"));
static cl::opt<bool> opt_verify("gov-verify", cl::cat(category),
	cl::desc("govintercept: run LLVM's IR verifier after the rewriting"));
static cl::opt<bool> opt_help("gov-help", cl::cat(category),
	cl::desc("govintercept: print the plugin's options"));

const char gov_help_text[] =
	"Rewrites call sites and syscall sites into govrt sites (Rhodes, docs/abi.md).\n"
	"Load it twice:  clang -fpass-plugin=SO -Xclang -load -Xclang SO -Rpass=govintercept\n"
	"(-Rpass=govintercept, or -g, gives the IR the source positions sites need).\n"
	"Options, as -mllvm -gov-KEY[=VALUE] (the GCC plugin's KEY=VALUE):\n"
	"  -gov-targets=GLOB[:GLOB...] calls to functions matching a glob (fnmatch(3); tried on\n"
	"                           the name, the qualified C++ name and the assembler name;\n"
	"                           '::' inside a glob is part of it); repeatable\n"
	"  -gov-targets-file=PATH   more globs, one per line; blank lines and # comments skipped\n"
	"  -gov-targets-header=PATH calls to every function declared in that header; repeatable\n"
	"  -gov-syscalls=all|none|NAME[:NAME...]\n"
	"                           calls to glibc syscall wrappers, syscall(2) with a constant\n"
	"                           number and inline asm syscalls, for all syscalls, none\n"
	"                           (the default) or the named syscalls or wrappers\n"
	"  -gov-exports-of=RESOURCE calls to every function RESOURCE exports, as the rule store\n"
	"                           lists them (govctl exports RESOURCE); repeatable\n"
	"  -gov-store=URL           the rule store for exports-of (default: GOV_STORE, as govctl)\n"
	"  -gov-govctl=PATH         the govctl to run (default: beside the plugin, else PATH)\n"
	"  -gov-resource=NAME       the resource the module belongs to (GOV_RESOURCE overrides)\n"
	"  -gov-list=PATH           append one line per site: id kind caller callee file:line\n"
	"  -gov-unmatched=warn|ignore\n"
	"                           a -gov-targets name or glob, or a -gov-targets-header, that\n"
	"                           matches no callee of the unit: one warning per unit (the\n"
	"                           default), or none\n"
	"  -gov-verbose             a remark per site, and per targets-file or exports-of name\n"
	"                           that matches no callee of the unit\n"
	"  -gov-verify              run LLVM's IR verifier on the module after the rewriting\n"
	"  -gov-help                print this text\n"
	"__attribute__((gov_native)) (or annotate(\"gov_native\")) on a function keeps its own\n"
	"body uninstrumented; so do #pragma gov_native(NAME[, NAME...]) and\n"
	"#pragma gov_native push ... pop. clang-plugin/README.md is the manual.\n";

/* Splits at ':' but keeps C++'s '::' inside an item. */
static std::vector<std::string> split_list(const std::string &s)
{
	std::vector<std::string> out(1);
	for (size_t i = 0; i < s.size(); i++) {
		if (s[i] == ':' && i + 1 < s.size() && s[i + 1] == ':') {
			out.back() += "::";
			i++;
		} else if (s[i] == ':') {
			out.emplace_back();
		} else {
			out.back() += s[i];
		}
	}
	return out;
}

static bool resource_name_ok(const std::string &s)
{
	if (s.empty() || s.size() >= GOV_NAME_MAX || s[0] == '.')
		return false;
	for (char c : s)
		if (!isalnum((unsigned char)c) && !strchr("._-", c))
			return false;
	return true;
}

static void read_targets_file(const std::string &path, std::vector<std::string> *errors)
{
	std::vector<std::string> globs;
	if (!gov_read_targets_file(path.c_str(), &globs))
		errors->push_back("cannot read targets-file '" + path + "': " + strerror(errno));
	for (const std::string &g : globs)
		gov_add_target(g, GOV_TARGET_FROM_FILE);
}

static void syscalls_option(const std::string &value, std::vector<std::string> *errors)
{
	if (value.empty() || value == "none") {
		gov_opts.syscalls = GOV_SYSCALLS_NONE;
		return;
	}
	if (value == "all") {
		gov_opts.syscalls = GOV_SYSCALLS_ALL;
		return;
	}
	gov_opts.syscalls = GOV_SYSCALLS_LIST;
	for (const std::string &name : split_list(value)) {
		if (gov_syscall_number(name.c_str()) < 0 && !gov_libc_lookup(name.c_str()))
			errors->push_back("-gov-syscalls: '" + name + "' is neither an x86-64 "
					  "syscall nor a glibc syscall wrapper");
		gov_opts.syscall_names.insert(name);
	}
}

void gov_add_target(const std::string &glob, gov_target_origin origin)
{
	gov_opts.targets.push_back(glob);
	gov_opts.target_origins.push_back(origin);
}

void gov_load_options(std::vector<std::string> *errors)
{
	gov_opts = gov_options();
	if (opt_help)
		fprintf(stderr, "%s: %s", GOV_PLUGIN_NAME, gov_help_text);
	gov_opts.verbose = opt_verbose;
	gov_opts.verify = opt_verify;
	for (const std::string &v : opt_targets)
		for (const std::string &glob : split_list(v))
			if (!glob.empty())
				gov_add_target(glob, GOV_TARGET_FROM_OPTION);
	for (const std::string &path : opt_targets_file)
		read_targets_file(path, errors);
	for (const std::string &h : opt_targets_header) {
		char *real = realpath(h.c_str(), NULL);
		if (!real || access(real, R_OK) != 0)
			errors->push_back("cannot read targets-header '" + h + "': " + strerror(errno));
		else {
			gov_opts.headers.push_back(real);
			gov_opts.header_args.push_back(h);
		}
		free(real);
	}
	for (const std::string &r : opt_exports_of) {
		if (resource_name_ok(r))
			gov_opts.exports_of.push_back(r);
		else
			errors->push_back("-gov-exports-of='" + r + "': a resource name is "
					  "1-63 of A-Z a-z 0-9 . _ - and does not start with '.'");
	}
	gov_opts.store = opt_store;
	gov_opts.govctl = opt_govctl;
	if (opt_unmatched.getNumOccurrences()) {
		if (opt_unmatched != "warn" && opt_unmatched != "ignore")
			errors->push_back("-gov-unmatched='" + opt_unmatched + "': the value is "
					  "'warn' or 'ignore'");
		gov_opts.warn_unmatched = opt_unmatched != "ignore";
	}
	syscalls_option(opt_syscalls, errors);
	if (opt_resource.getNumOccurrences()) {
		if (resource_name_ok(opt_resource))
			gov_opts.resource = opt_resource;
		else
			errors->push_back("-gov-resource='" + opt_resource + "': a resource name is "
					  "1-63 of A-Z a-z 0-9 . _ - and does not start with '.'");
	}
	if (opt_list.getNumOccurrences()) {
		if (opt_list.empty())
			errors->push_back("option '-gov-list' needs a value (-mllvm -gov-list=PATH)");
		gov_opts.list_path = opt_list;
	}
	/* after every option: -gov-store and -gov-govctl apply */
	if (errors->empty())
		gov_load_exports(errors);
}

bool gov_syscall_selected(int nr, const char *wrapper)
{
	return gov_syscall_in(gov_opts.syscalls, gov_opts.syscall_names, nr, wrapper);
}
