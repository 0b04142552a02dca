/* clang-plugin/pragma.cc - #pragma gov_native, the pragma form of the
 * gov_native attribute, as in the GCC plugin (gcc-plugin/govintercept.cc):
 *
 *     #pragma gov_native(real_ppid, raw_write)   these functions, wherever
 *                                                they are defined in the unit
 *     #pragma gov_native push                    every function defined from
 *     ...                                        here to the matching pop
 *     #pragma gov_native pop
 *
 * A PragmaHandler the clang half registers (clang adds every registered
 * handler to the preprocessor it creates, after -Xclang -load). Names are
 * looked up when the AST walk asks, after the whole unit is parsed, so the
 * pragma may come before or after the definition; a push ... pop region
 * holds the functions whose body ends inside it (GCC's finish_function).
 * A malformed pragma, a pop without a push and a push never popped are
 * warnings with their line and column; the compilation goes on.
 *
 * Not here: the attribute and the walk (frontend.cc).
 */
#include "govintercept-llvm.h"
#include "frontend.h"

#include "clang/Basic/SourceManager.h"
#include "clang/Lex/Preprocessor.h"

using namespace clang;

namespace {

std::set<std::string> native_names;
/* regions as [push, pop) positions; an open one ends with the unit */
std::vector<std::pair<SourceLocation, SourceLocation>> regions;
std::vector<SourceLocation> open_pushes;

void warn(Preprocessor &pp, SourceLocation loc, const std::string &msg)
{
	DiagnosticsEngine &d = pp.getDiagnostics();
	d.Report(loc, gov_warning_id(d, "%0"))
		<< std::string(GOV_PLUGIN_NAME) + ": " + msg;
}

/* Reads to the end of the pragma line, so a bad one leaves nothing behind. */
void skip_rest(Preprocessor &pp, Token &tok)
{
	while (tok.isNot(tok::eod))
		pp.Lex(tok);
}

void push_or_pop(Preprocessor &pp, Token &tok, bool push)
{
	SourceLocation at = tok.getLocation();
	pp.Lex(tok);
	if (tok.isNot(tok::eod)) {
		warn(pp, tok.getLocation(), std::string("junk at the end of '#pragma gov_native ") +
		     (push ? "push" : "pop") + "'");
		skip_rest(pp, tok);
		return;
	}
	if (push) {
		open_pushes.push_back(at);
	} else if (open_pushes.empty()) {
		warn(pp, at, "'#pragma gov_native pop' without a push");
	} else {
		/* nested pushes: the outermost pair is the region */
		SourceLocation from = open_pushes.back();
		open_pushes.pop_back();
		if (open_pushes.empty())
			regions.emplace_back(from, at);
	}
}

void name_list(Preprocessor &pp, Token &tok)
{
	std::vector<std::string> names;
	for (;;) {
		pp.Lex(tok);
		if (tok.isNot(tok::identifier) && !tok.getIdentifierInfo()) {
			warn(pp, tok.getLocation(), "expected a function name in '#pragma gov_native'");
			return skip_rest(pp, tok);
		}
		names.push_back(tok.getIdentifierInfo()->getName().str());
		pp.Lex(tok);
		if (tok.is(tok::r_paren))
			break;
		if (tok.isNot(tok::comma)) {
			warn(pp, tok.getLocation(), "expected ',' or ')' in '#pragma gov_native'");
			return skip_rest(pp, tok);
		}
	}
	pp.Lex(tok);
	if (tok.isNot(tok::eod)) {
		warn(pp, tok.getLocation(), "junk at the end of '#pragma gov_native'");
		return skip_rest(pp, tok);
	}
	native_names.insert(names.begin(), names.end());
}

struct gov_native_pragma : public PragmaHandler {
	gov_native_pragma() : PragmaHandler("gov_native") {}
	void HandlePragma(Preprocessor &pp, PragmaIntroducer, Token &first) override
	{
		Token tok;
		pp.Lex(tok);
		IdentifierInfo *ii = tok.getIdentifierInfo();
		if (ii && (ii->getName() == "push" || ii->getName() == "pop"))
			return push_or_pop(pp, tok, ii->getName() == "push");
		if (tok.isNot(tok::l_paren)) {
			warn(pp, tok.getLocation(), "expected '(', 'push' or 'pop' after "
			     "'#pragma gov_native'");
			return skip_rest(pp, tok);
		}
		name_list(pp, tok);
	}
};

PragmaHandlerRegistry::Add<gov_native_pragma> registered("gov_native",
	"Rhodes: keep functions uninstrumented");

} // namespace

bool gov_pragma_native(const FunctionDecl *fd, const SourceManager &sm)
{
	if (fd->getIdentifier() && native_names.count(fd->getName().str()))
		return true;
	if (regions.empty() && open_pushes.empty())
		return false;
	SourceLocation end = sm.getExpansionLoc(fd->getEndLoc());
	for (const auto &r : regions)
		if (!sm.isBeforeInTranslationUnit(end, r.first) &&
		    sm.isBeforeInTranslationUnit(end, r.second))
			return true;
	return !open_pushes.empty() &&
	       !sm.isBeforeInTranslationUnit(end, open_pushes.front());
}

void gov_pragma_finish(DiagnosticsEngine &d)
{
	if (!open_pushes.empty())
		d.Report(open_pushes.front(), gov_warning_id(d, "%0"))
			<< std::string(GOV_PLUGIN_NAME) + ": '#pragma gov_native push' without a pop";
}
