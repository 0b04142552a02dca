// tests/gcc-plugin/cxxhelper.cc - callees for calls.cc, built plain.
#include <stdexcept>
#include "cxxhelper.h"

namespace billing {
long charge(long cents) { return cents * 3; }
long Ledger::add(long v) { total += v; return total; }
int may_throw(int x)
{
	if (x < 0)
		throw std::runtime_error("negative");
	return x * 11;
}
} // namespace billing

extern "C" long twice(long x) { return 2 * x; }
