/* tests/dyn/noargs.c - reads no argument word, so govrt copies none into
 * its kept context (docs/dynrules.md), and answers NATIVE_ARGS without
 * changing any: the call must run with its own arguments. */
#include "gov/dynrule.h"

GOV_RULE(noargs)
{
	return GOV_DYN_NATIVE_ARGS;
}
