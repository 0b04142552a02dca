/* tests/clang-plugin/exports.h - a header for govexports: functions of
 * every kind of signature, some that have type codes and some that do not. */
#ifndef EXPORTS_H
#define EXPORTS_H
#include <stddef.h>
#include <sys/types.h>

struct pair { long a, b; };
struct mixed { char c; struct { float f; int i; } in; double d[2]; };
struct __attribute__((packed)) packed { char c; int i; };
union either { int i; float f; };
struct bits { int a : 3; int b; };

long nd_send(const void *buf, size_t len);
ssize_t nd_recv(int fd, void *buf, size_t cap);
const char *nd_name(unsigned id);
int nd_open(const char *path, int flags);
void nd_close(int fd);
double nd_rate(float f, double d);
long nd_pair(struct pair p);
struct mixed nd_mixed(struct pair p, int k);
long nd_packed(struct packed p);
long nd_either(union either e);
long nd_bits(struct bits b);
long double nd_precise(void);
int nd_log(const char *fmt, ...);
long nd_seven(int a, int b, int c, int d, int e, int f, int g);
long nd_send(const void *buf, size_t len);
static inline int nd_local(void) { return 1; }
#endif
