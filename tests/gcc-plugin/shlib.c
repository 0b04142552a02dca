/* tests/gcc-plugin/shlib.c - a shared object with sites of its own (built
 * -fPIC with targets=inner_value): its table registers with govrt next to
 * the executable's. */
__attribute__((noinline)) long inner_value(long x)
{
	return x + 1;
}

long lib_entry(long x)
{
	return inner_value(x) * 10;
}
