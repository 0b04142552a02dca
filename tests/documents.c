/* tests/documents.c - rule-document checks shared by the tests (harness.h),
 * apart from harness.c: t_fastpath_static links the harness without the
 * rule store. */
#include <string.h>
#include "../rules/ruledoc.h"
#include "harness.h"

int document_refused(const char *text, const char *where, const char *why, char *err,
		     size_t len)
{
	struct gov_ruledoc d;
	err[0] = 0;
	if (gov_ruledoc_parse(text, strlen(text), "doc", &d, err, len) == 0) {
		gov_ruledoc_free(&d);
		return 0;
	}
	return strstr(err, where) && strstr(err, why);
}
