/* runtime/static/shim.c - the few libc functions that the shared runtime
 * sources compiled into govrt-static (runtime/hello.c, wire.c, util.c,
 * decision.c, syscalls.c) call, written over raw system calls so that govrt-static
 * shares nothing with the static program's libc: no TLS, no malloc, no
 * stdio. The compiler's own memcpy/memset calls land here too.
 *
 * Not a libc: formats cover what those files print (%s %c %d %u %x %p,
 * with l/ll/z, a width and 0); errno is one word for the whole process
 * (hello.c reads it right after the call that failed; a thread racing in
 * between could only change the errno number of a failed connection). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "sys.h"

char **govrt_static_envp;
static int the_errno;

int *__errno_location(void)
{
	return &the_errno;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	if (p < q)
		return memcpy(d, s, n);
	while (n--)
		p[n] = q[n];
	return d;
}

void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

void *memchr(const void *s, int c, size_t n)
{
	const unsigned char *p = s;
	for (; n; n--, p++)
		if (*p == (unsigned char)c)
			return (void *)p;
	return NULL;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

int strcmp(const char *a, const char *b)
{
	return strncmp(a, b, (size_t)-1);
}

char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

char *getenv(const char *name)
{
	size_t n = strlen(name);
	for (char **e = govrt_static_envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

long strtol(const char *s, char **end, int base)
{
	long v = 0;
	int neg = 0;
	(void)base; /* decimal only: GOV_TIMEOUT_MS, GOV_SPIN_US, an errno number */
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	const char *start = s;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	if (end)
		*end = (char *)(s == start ? start - neg : s);
	return neg ? -v : v;
}

unsigned getuid(void)
{
	return (unsigned)sys0(SYS_getuid);
}

long syscall(long nr, ...)
{
	va_list ap;
	long a[6];
	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	long r = sys6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (r < 0 && r > -4096) {
		the_errno = (int)-r;
		return -1;
	}
	return r;
}

/* runtime/hello.c's socket, file and memory calls */
int getpid(void)
{
	return (int)sys0(SYS_getpid);
}

int close(int fd)
{
	return (int)syscall(SYS_close, (long)fd);
}

int setsockopt(int fd, int level, int name, const void *v, socklen_t len)
{
	return (int)syscall(SYS_setsockopt, (long)fd, (long)level, (long)name, (long)v, (long)len);
}

ssize_t send(int fd, const void *b, size_t n, int flags)
{
	return syscall(SYS_sendto, (long)fd, (long)b, (long)n, (long)flags, 0L, 0L);
}

ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	return syscall(SYS_recvmsg, (long)fd, (long)m, (long)flags);
}

int fstat(int fd, struct stat *st)
{
	return (int)syscall(SYS_fstat, (long)fd, (long)st);
}

void *mmap(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
	long r = syscall(SYS_mmap, (long)a, (long)n, (long)prot, (long)flags, (long)fd, (long)off);
	return r == -1 ? MAP_FAILED : (void *)r;
}

int munmap(void *a, size_t n)
{
	return (int)syscall(SYS_munmap, (long)a, (long)n);
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	return (int)syscall(SYS_clock_gettime, (long)clk, (long)ts);
}

/* The names GOV_FAIL=closed:NAME takes (the errnos rules use most). */
const char *strerrorname_np(int e)
{
	static const struct { int e; const char *name; } names[] = {
		{ 1, "EPERM" }, { 2, "ENOENT" }, { 4, "EINTR" }, { 5, "EIO" },
		{ 9, "EBADF" }, { 11, "EAGAIN" }, { 12, "ENOMEM" }, { 13, "EACCES" },
		{ 16, "EBUSY" }, { 17, "EEXIST" }, { 22, "EINVAL" }, { 24, "EMFILE" },
		{ 28, "ENOSPC" }, { 30, "EROFS" }, { 38, "ENOSYS" }, { 95, "EOPNOTSUPP" },
		{ 103, "ECONNABORTED" }, { 110, "ETIMEDOUT" }, { 111, "ECONNREFUSED" },
		{ 122, "EDQUOT" },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].e == e)
			return names[i].name;
	return NULL;
}

/* ---- formatting ---------------------------------------------------------- */
struct out {
	char *p;
	size_t cap, n;
};

static void put(struct out *o, char c)
{
	if (o->n + 1 < o->cap)
		o->p[o->n] = c;
	o->n++;
}

static void put_num(struct out *o, unsigned long long v, unsigned base, int width, char pad)
{
	char d[24];
	int k = 0;
	do {
		d[k++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (width-- > k)
		put(o, pad);
	while (k)
		put(o, d[--k]);
}

int vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap)
{
	struct out o = { buf, cap, 0 };
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0, lng = 0;
		if (*fmt == '0')
			pad = '0', fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z')
			lng++, fmt++;
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			for (s = s ? s : "(null)"; *s; s++)
				put(&o, *s);
			break;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case 'd': {
			long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
			if (v < 0)
				put(&o, '-'), v = -v;
			put_num(&o, (unsigned long long)v, 10, width, pad);
			break;
		}
		case 'u':
		case 'x':
			put_num(&o, lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned),
				*fmt == 'u' ? 10 : 16, width, pad);
			break;
		case 'p':
			put(&o, '0'), put(&o, 'x');
			put_num(&o, (uintptr_t)va_arg(ap, void *), 16, 0, ' ');
			break;
		case '%':
			put(&o, '%');
			break;
		default:
			return -1;
		}
		if (!*fmt)
			break;
	}
	if (cap)
		buf[o.n < cap ? o.n : cap - 1] = 0;
	return (int)o.n;
}

int snprintf(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}
