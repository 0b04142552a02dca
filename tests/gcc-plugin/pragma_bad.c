/* tests/gcc-plugin/pragma_bad.c - malformed #pragma gov_native: each a
 * warning with its line, none stops the compilation. */
#pragma gov_native
#pragma gov_native(1)
#pragma gov_native(a b)
#pragma gov_native pop
#pragma gov_native push extra
#pragma gov_native push
int unused;
