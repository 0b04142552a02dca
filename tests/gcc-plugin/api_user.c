/* tests/gcc-plugin/api_user.c - calls api.h's functions and one that is not
 * in api.h; targets-header=api.h makes sites of the first two only. */
#include "api.h"

long not_in_api(long x);

long use_api(void)
{
	long h = api_open("ledger");
	return api_close(h) + not_in_api(h);
}
