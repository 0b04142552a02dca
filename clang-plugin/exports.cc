/* clang-plugin/exports.cc - -gov-exports-of=RESOURCE: every function another
 * registered resource exports becomes a target.
 *
 * As in the GCC plugin (gcc-plugin/targets.cc): the plugin runs
 * `govctl [--store URL] exports RESOURCE` (docs/abi.md "Export lists") and
 * makes each name it prints a target, the `# untyped NAME` lines included;
 * the types of each site come from the prototype clang sees, as for any
 * target. govctl is the one given by -gov-govctl, else the one installed
 * beside the plugin (PREFIX/lib/clang-plugin -> PREFIX/bin, build/lib ->
 * build/bin), else the first on PATH (plugin-common/targets.cc runs it).
 * Its failures are errors quoting it.
 *
 * Not here: matching the targets (frontend.cc), the other options
 * (options.cc).
 */
#include "govintercept-llvm.h"

#include <dlfcn.h>

/* The directory this shared object was loaded from, with its '/'. */
static std::string plugin_dir(void)
{
	Dl_info info;
	if (!dladdr((void *)&gov_load_exports, &info) || !info.dli_fname)
		return "";
	std::string path = info.dli_fname;
	size_t slash = path.find_last_of('/');
	return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

void gov_load_exports(std::vector<std::string> *errors)
{
	if (gov_opts.exports_of.empty())
		return;
	std::string govctl = gov_find_govctl(gov_opts.govctl, plugin_dir());
	for (const std::string &r : gov_opts.exports_of) {
		std::vector<std::string> names;
		std::string why;
		bool not_run;
		if (!gov_exported_names(govctl, gov_opts.store, r, &names, &why, &not_run))
			errors->push_back("-gov-exports-of=" + r + ": " + why +
					  (not_run ? " (give its path with -mllvm -gov-govctl=PATH)" : ""));
		for (const std::string &n : names)
			gov_add_target(n, GOV_TARGET_FROM_EXPORTS);
	}
}
