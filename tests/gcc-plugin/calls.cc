// tests/gcc-plugin/calls.cc - C++ call sites: namespaces, a member function,
// extern "C", a callee that throws through an instrumented call with a
// destructor to run, and a syscall wrapper. Built plain and with
// govintercept (targets=billing::*:twice, syscalls=all).
#include <cstdio>
#include <stdexcept>
#include <unistd.h>
#include "cxxhelper.h"

#if __has_attribute(gov_native)
#define GOV_NATIVE __attribute__((gov_native))
#else
#define GOV_NATIVE
#endif
GOV_NATIVE static long real_ppid() { return getppid(); }

struct Guard {
	const char *name;
	~Guard() { std::printf("unwind %s\n", name); }
};

static int attempt(int x)
{
	Guard g{"attempt"};
	return billing::may_throw(x) + 1;
}

int main()
{
	std::printf("charge %ld\n", billing::charge(250));
	billing::Ledger ledger;
	ledger.add(5);
	std::printf("ledger %ld\n", ledger.add(7));
	std::printf("twice %ld\n", twice(8));
	try {
		std::printf("attempt %d\n", attempt(3));
		std::printf("attempt %d\n", attempt(-1));
	} catch (const std::exception &e) {
		std::printf("caught %s\n", e.what());
	}
	std::printf("getppid %s\n", getppid() == real_ppid() ? "real" : "other");
	return 0;
}
