/* tests/gcc-plugin/siteid.c - prints gov_site_id(file, line, caller, callee)
 * from gov/abi.h, to check the ids the plugin computed at build time. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include "gov/abi.h"

int main(int argc, char **argv)
{
	if (argc != 5)
		return 2;
	printf("%016" PRIx64 "\n", gov_site_id(argv[1], (uint32_t)atoi(argv[2]), argv[3], argv[4]));
	return 0;
}
