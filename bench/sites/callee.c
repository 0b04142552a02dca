/* bench/sites/callee.c - the small external function the loop of loop.c
 * calls: its own translation unit, so the call is a real call in both
 * builds (no LTO). */
__attribute__((noinline)) long sites_callee(long x)
{
	return x + 1;
}
