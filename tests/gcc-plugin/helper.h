/* tests/gcc-plugin/helper.h - the functions calls.c calls through sites, one
 * per type code worth checking (gov/types.def). */
#ifndef GP_HELPER_H
#define GP_HELPER_H
#include <stddef.h>

long twice(long x);                                   /* ll */
double scale(double x, float f);                      /* ddf */
int sum6(int a, int b, int c, int d, int e, int f);   /* iiiiiii */
size_t count_nonzero(const void *buf, size_t n);      /* zbz */
size_t fill(void *buf, size_t n, int c);              /* zozi */
const char *greet(const char *name);                  /* ps */
short neg16(short x);                                 /* ii */
unsigned char low8(unsigned long x);                  /* uL */
unsigned mix(unsigned a, long long b, _Bool c);       /* uuli */
void note(int x);                                     /* vi */
extern int noted;
long from_other_unit(long x);                         /* calls twice itself */
#endif
