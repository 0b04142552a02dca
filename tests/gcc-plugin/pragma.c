/* tests/gcc-plugin/pragma.c - #pragma gov_native: by name (before and after
 * the definition) and push ... pop. Built with targets=twice: only
 * plain_before and plain_after keep sites. */
long twice(long x);   /* C or C++: the glob matches the name */

#pragma gov_native(named_before, named_after)

long named_before(long x) { return twice(x); }
long plain_before(long x) { return twice(x); }

#pragma gov_native push
long in_region(long x) { return twice(x); }
static long in_region_static(long x) { return twice(x) + 1; }
#pragma gov_native pop

long plain_after(long x) { return twice(x) + in_region_static(x); }
long named_after(long x) { return twice(x); }
