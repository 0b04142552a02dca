// tests/gcc-plugin/cxxhelper.h - what calls.cc calls through sites.
#ifndef GP_CXXHELPER_H
#define GP_CXXHELPER_H
namespace billing {
long charge(long cents);
struct Ledger {
	long total = 0;
	long add(long v);
};
int may_throw(int x);   // throws std::runtime_error when x < 0
} // namespace billing
extern "C" long twice(long x);
#endif
