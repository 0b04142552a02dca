/* tests/gcc-plugin/structs.c - call sites passing and returning structs by
 * value. Built with targets=c_pt:c_tri:mk_wide it calls c-svc's exports
 * (forwarded by an agent, or native); the callees of the plain build are
 * structs_local.c's. `bad` is only compiled, for its warnings. */
#include <stdio.h>
#include <string.h>
#include "structs.h"

static void show_wide(const char *what, struct wide w)
{
	printf("%s %d %d %u %.2f %d %.2f %.2f %zu %s\n", what, w.c, w.h, w.u, w.in.f, w.in.i,
	       w.d[0][1], w.d[1][1], w.n, w.p ? "p" : "-");
}

long bad(void)
{
	union either e = { 1 };
	struct bits b = { 1, 2 };
	struct packed p = { 1, 2 };
	struct flex f = { 0 };
	struct huge h = { 0 };
	return by_union(e) + by_bits(b) + by_packed(p) + by_flex(f) + by_huge(h).a;
}

int main(void)
{
	struct pt p = c_pt((struct pt){ 7, 1.25 }, 3);
	printf("c_pt=%d %.3f\n", p.a, p.b);
	struct tri t = { { 40, 41, 2 } };
	printf("c_tri=%.1f\n", c_tri(t));
	c_pt(p, 2);    /* a struct return nobody reads */
	struct wide w = { 1, 2, 3, { 4.5f, 5 }, { { 6, 7 }, { 8, 9 } }, 10, &w };
	show_wide("mk_wide", mk_wide(2, w));
	unsigned char bytes[5000];
	for (size_t i = 0; i < sizeof bytes; i++)
		bytes[i] = (unsigned char)i;
	printf("c_rec=%ld\n", c_rec((struct rec){ "name", 3, bytes, 10 }, 1));
	printf("c_rec_null=%ld\n", c_rec((struct rec){ NULL, 3, NULL, 10 }, 1));
	char title[] = "a title";
	printf("c_doc=%ld\n", c_doc((struct doc){ 'D', { "xy", 2, bytes, sizeof bytes }, title }));
	printf("mk_named=%s\n", mk_named(4).name);
	struct lc m = c_mix3((struct f3){ 1.5f, 2.5f, 3 }, (struct c2){ 2, 3 }, (struct lc){ 10000, 'a' });
	printf("c_mix3=%ld %c\n", m.l, m.c);
	return 0;
}
