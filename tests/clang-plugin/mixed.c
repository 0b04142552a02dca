/* tests/clang-plugin/mixed.c - main of a program whose objects come from
 * both compilers: this unit is built by clang with govintercept-llvm.so,
 * tests/gcc-plugin/helper.c by gcc with govintercept.so. */
#include <stdio.h>
#include "helper.h"

int main(void)
{
	printf("twice %ld\n", twice(21));
	printf("other %ld\n", from_other_unit(4));
	return 0;
}
