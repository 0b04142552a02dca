// tests/rewrite/throw.cc - a C++ exception thrown by a function whose call
// sites govrewrite redirects (--calls may_throw): the callee returns, and
// unwinds, to the original return address, so catch still works.
#include <cstdio>
#include <stdexcept>

__attribute__((noinline)) int may_throw(int x)
{
	if (x > 2)
		throw std::runtime_error("too big");
	return x * 10;
}

int main()
{
	int sum = 0;
	for (int i = 0; i < 5; i++) {
		try {
			sum += may_throw(i);
		} catch (const std::exception &e) {
			std::printf("caught %s at %d\n", e.what(), i);
		}
	}
	std::printf("sum %d\n", sum);
	return 0;
}
