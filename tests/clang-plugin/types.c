/* tests/clang-plugin/types.c - one call per C type the type codes tell
 * apart, and variadic calls whose extra arguments take the libc table's
 * codes or their promoted types; built by gcc and by clang with
 * targets='t_*' and syscalls=all, the two site tables must be equal. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <unistd.h>

enum colour { RED, GREEN };
enum sign { MINUS = -1, PLUS = 1 };
typedef size_t my_size;

int t_bool(_Bool b) { return b; }
int t_chars(char c, signed char s, unsigned char u) { return c + s + u; }
long t_ints(short s, unsigned short us, long long ll, unsigned long long ull) { return s + us + (long)ll + (long)ull; }
int t_enums(enum colour c, enum sign s) { return (int)c + (int)s; }
size_t t_sizes(my_size a, size_t b, ssize_t c, off_t d, uint64_t e) { return a + b + (size_t)c + (size_t)d + e; }
double t_floats(float f, double d) { return f + d; }
char *t_ptrs(const char *s, char *m, const unsigned char *u, void (*fn)(void)) { (void)fn; (void)u; (void)s; return m; }
void t_bufs(const void *in, size_t n, void *out, size_t m) { (void)in; (void)n; (void)out; (void)m; }
unsigned t_var(int n, ...) { va_list ap; va_start(ap, n); unsigned r = va_arg(ap, unsigned); va_end(ap); return r; }

int main(void)
{
	char buf[8] = "abc";
	long r = t_bool(1) + t_chars('a', -1, 200) + t_ints(-1, 2, 3, 4) + t_enums(GREEN, MINUS);
	r += (long)t_sizes(1, 2, 3, 4, 5) + (long)t_floats(1.5f, 2.5);
	r += t_ptrs("x", buf, (const unsigned char *)buf, 0) != 0;
	t_bufs(buf, 3, buf, 8);
	r += t_var(2, 7u, 1.5f) + t_var(1, (short)3);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
	r += ioctl(fd, FIONREAD, &r) + fcntl(fd, F_GETFD) + close(fd);
	printf("%ld %d\n", r, printf("%s %u %lu\n", "v", 1u, (unsigned long)sizeof buf));
	return 0;
}
