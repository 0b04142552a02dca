/* tests/gcc-plugin/structs_local.c - structs.c's callees in its own
 * process: c_pt and c_tri answer differently from tests/xcall/peer.c's
 * (served) ones, so a forwarded call shows; mk_wide is never forwarded. */
#include "structs.h"

struct pt c_pt(struct pt p, int k) { return (struct pt){ -p.a * k, -p.b * k }; }
double c_tri(struct tri t) { return -(double)(t.v[0] + t.v[1] + t.v[2]); }
struct wide mk_wide(long k, struct wide w)
{
	w.c *= k; w.h *= k; w.u *= k; w.in.f *= k; w.in.i *= k;
	w.d[0][1] *= k; w.d[1][1] *= k; w.n *= k; w.p = 0;
	return w;
}

/* what tests/xcall/peer.c's c_rec and c_doc compute, negated */
static long rec_value(struct rec r)
{
	long sum = 0;
	for (size_t i = 0; r.data && i < r.len; i++)
		sum += ((const unsigned char *)r.data)[i];
	return (r.name ? (long)__builtin_strlen(r.name) : -1) * 1000 + sum * 10 + r.n;
}
long c_rec(struct rec r, long k) { return -(rec_value(r) + k); }
long c_doc(struct doc d)
{
	return -(d.tag + rec_value(d.r) + (d.title ? (long)__builtin_strlen(d.title) : -1) * 100000);
}
struct named mk_named(long n) { return (struct named){ "local", (size_t)n }; }
struct lc c_mix3(struct f3 v, struct c2 s, struct lc l)
{
	return (struct lc){ -(l.l + s.a * 100 + s.b * 1000 + (long)(v.x + v.y + v.z)), (char)(l.c - 1) };
}

/* structs.c's bad() calls these; they are never sites */
long by_union(union either e) { return e.i; }
long by_bits(struct bits b) { return b.b; }
long by_packed(struct packed p) { return p.i; }
long by_flex(struct flex f) { return f.n; }
struct huge by_huge(struct huge h) { return h; }
