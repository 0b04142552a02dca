/* gcc-plugin/verify_pass.cc - "govintercept-verify": with the verify option,
 * GCC's SSA, IL and CFG verifiers run again right after "ssa", when the
 * variables our rewriting introduced have been renamed into SSA form.
 *
 * Debian's GCC is built with --enable-checking=release, so none of this runs
 * on its own; the instrument pass verifies its own output, this pass checks
 * that into-SSA made sense of it. Not for production builds: it costs time.
 */
#include "govintercept.h"
#include "tree-ssa.h"

namespace {

const pass_data verify_pass_data = {
	GIMPLE_PASS,
	"govintercept-verify",
	OPTGROUP_NONE,
	TV_NONE,
	PROP_cfg | PROP_ssa,
	0, 0, 0, 0,
};

class verify_pass : public gimple_opt_pass {
public:
	verify_pass(gcc::context *ctxt) : gimple_opt_pass(verify_pass_data, ctxt) {}

	bool gate(function *) final override { return gov_opts.verify && !seen_error(); }
	unsigned int execute(function *fun) final override
	{
		verify_ssa(true, true);
		verify_gimple_in_cfg(fun, false);
		verify_flow_info();
		return 0;
	}
};

} // namespace

opt_pass *gov_make_verify_pass(gcc::context *ctxt)
{
	return new verify_pass(ctxt);
}
