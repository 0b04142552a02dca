/* tests/gcc-plugin/shmain.c - calls into libgp.so through a site of its own
 * (targets=lib_entry). */
#include <stdio.h>

long lib_entry(long x);

int main(void)
{
	printf("lib_entry %ld\n", lib_entry(1));
	printf("lib_entry %ld\n", lib_entry(2));
	return 0;
}
