/* tests/t_wire.c - the wire codec and the region and message checks: every
 * type round-trips, and every malformed field is refused by name. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "gov/wire.h"
#include "gov/region.h"
#include "tap.h"

static char frame[4096];
static struct gov_site site = {
	.id = 77, .kind = GOV_SITE_CALL, .sysno = -1, .caller = "main",
	.callee = "send_msg", .types = "lsbzdi", .file = "x.c", .line = 3,
};

static long encode_sample(void)
{
	static const char text[] = "hello";
	static const unsigned char bytes[5] = { 1, 2, 3, 4, 5 };
	double d = 2.5;
	struct gov_call c = { { (uint64_t)(uintptr_t)text, (uint64_t)(uintptr_t)bytes, 5, 0, 0 }, 0 };
	int neg = -7;
	memcpy(&c.arg[3], &d, sizeof d);
	memcpy(&c.arg[4], &neg, sizeof neg);
	char err[200];
	return gov_wire_encode_req(frame, sizeof frame, 99, &site, &c, err, sizeof err);
}

/* Decodes frame after mutating it; returns the error text. */
static const char *decode_err(long len)
{
	static char err[200];
	struct gov_wire_call out;
	err[0] = 0;
	if (gov_wire_decode_req(frame, (size_t)len, &out, err, sizeof err) == 0)
		return "(decoded)";
	return err;
}

static void test_roundtrip(void)
{
	long len = encode_sample();
	ok(len > 0, "a call with a string, a buffer, a size, a double and an int encodes");
	struct gov_wire_call out;
	char err[200];
	ok(gov_wire_decode_req(frame, (size_t)len, &out, err, sizeof err) == 0, "and decodes (%s)", err);
	is_long(out.hdr->seq, 99, "seq survives");
	is_long(out.hdr->site_id, 77, "site id survives");
	ok(strcmp(out.hdr->callee, "send_msg") == 0, "callee survives");
	ok(out.data[0] && strcmp(out.data[0], "hello") == 0, "the string travels by value");
	ok(out.len[1] == 5 && memcmp(out.data[1], "\1\2\3\4\5", 5) == 0,
	   "the buffer travels with the length of the next size parameter");
	double d;
	memcpy(&d, &out.value[3], sizeof d);
	ok(d == 2.5, "a double travels bit for bit");
	int i;
	memcpy(&i, &out.value[4], sizeof i);
	is_long(i, -7, "an int travels in the low bytes");
}

/* A serving process decodes with its export's parse of the type string,
 * but only when the request carries exactly that string. */
static void test_known_types(void)
{
	long len = encode_sample();
	struct gov_wire_call out;
	struct gov_typestr ts, other;
	const char *why;
	size_t where;
	char err[200] = "";
	gov_typestr_check("lsbzdi", &ts, &why, &where);
	ok(gov_wire_decode_req_known(frame, (size_t)len, "lsbzdi", &ts, &out, err, sizeof err) == 0 &&
	   strcmp(out.ts.top, "lsbzdi") == 0 && out.len[1] == 5,
	   "a request with the known type string decodes with the known parse (%s)", err);
	/* known is another export's string: its parse must not be used */
	gov_typestr_check("lsbzdl", &other, &why, &where);
	ok(gov_wire_decode_req_known(frame, (size_t)len, "lsbzdl", &other, &out, err, sizeof err) == 0 &&
	   strcmp(out.ts.top, "lsbzdi") == 0,
	   "one with another type string is parsed from its own (%s)", out.ts.top);
	frame[offsetof(struct gov_wire_req, types) + 5] = 'l';
	err[0] = 0;
	ok(gov_wire_decode_req_known(frame, (size_t)len, "lsbzdi", &ts, &out, err, sizeof err) < 0 &&
	   strstr(err, "argument 5 field type"),
	   "and checked against its own: an int record under an 'l' is refused (%s)", err);
}

static void test_malformed(void)
{
	long len = encode_sample();
	struct gov_wire_req *h = (struct gov_wire_req *)frame;
	has_str(decode_err(10), "shorter than", "a truncated header is refused");
	h->magic = 1;
	has_str(decode_err(len), "field magic", "a bad magic is named");
	encode_sample();
	h->version = 9;
	has_str(decode_err(len), "field version", "a bad version is named");
	encode_sample();
	h->kind = 5;
	has_str(decode_err(len), "field kind", "a bad kind is named");
	encode_sample();
	h->nargs = 40;
	has_str(decode_err(len), "field nargs", "too many arguments are named");
	encode_sample();
	memset(h->callee, 'x', sizeof h->callee);
	has_str(decode_err(len), "field callee", "an unterminated callee is named");
	encode_sample();
	strcpy(h->types, "l");
	has_str(decode_err(len), "field types", "types that disagree with nargs are named");
	encode_sample();
	has_str(decode_err(len - 8), "field body_len", "a body shorter than body_len is named");
	encode_sample();
	struct gov_wire_arg *a = (struct gov_wire_arg *)(h + 1);
	a->type = 'Q';
	has_str(decode_err(len), "argument 1 field type", "an unknown argument type is named");
	encode_sample();
	a->len = 100000;
	has_str(decode_err(len), "argument 1 field len", "an argument running past the end is named");
	encode_sample();
	((char *)(a + 1))[5] = 'X'; /* the NUL of "hello" */
	has_str(decode_err(len), "not NUL-terminated", "an unterminated string argument is refused");
	encode_sample();
	struct gov_wire_arg *last = (struct gov_wire_arg *)(frame + len - sizeof *last);
	last->len = 8; /* an int claiming bytes */
	has_str(decode_err(len), "for a scalar", "bytes attached to a scalar are refused");
}

static void test_too_big(void)
{
	static char big[8192];
	struct gov_call c = { { (uint64_t)(uintptr_t)big, sizeof big }, 0 };
	struct gov_site s = site;
	char err[200] = "";
	s.types = "lbz";
	ok(gov_wire_encode_req(frame, sizeof frame, 1, &s, &c, err, sizeof err) < 0,
	   "a buffer larger than the slot is not encoded");
	has_str(err, "do not fit", "and the error says so");
}

/* A struct with a string and a buffer member: struct { const char *name;
 * int n; const void *data; size_t len; } is {sibz}. */
struct msg { const char *name; int n; const void *data; size_t len; };

static long encode_struct(const struct msg *m, char *err, size_t errlen)
{
	struct gov_site s = site;
	s.types = "l{sibz}s";
	struct gov_call c = { { (uint64_t)(uintptr_t)m, (uint64_t)(uintptr_t)"tail" }, 0 };
	return gov_wire_encode_req(frame, sizeof frame, 5, &s, &c, err, errlen);
}

static void test_struct_members(void)
{
	char err[200] = "";
	struct msg m = { "abc", 7, "\1\2\3\4\5\6\7\10\11", 9 };
	long len = encode_struct(&m, err, sizeof err);
	ok(len > 0, "a struct with a string and a buffer member encodes (%s)", err);
	struct gov_wire_call out;
	ok(gov_wire_decode_req(frame, (size_t)len, &out, err, sizeof err) == 0, "and decodes (%s)", err);
	/* 32 bytes of struct, then "abc\0" (a word and 8 bytes), then 9 bytes
	 * (a word and 16 bytes) */
	is_long(out.len[0], 32 + 8 + 8 + 8 + 16, "its record holds the struct and both members");
	struct msg r;
	gov_wire_struct_rebuild(&out, 0, &r);
	ok(r.name && strcmp(r.name, "abc") == 0 && r.name != m.name,
	   "rebuilt, the string member points at its copy in the frame");
	ok(r.n == 7 && r.len == 9 && r.data && memcmp(r.data, m.data, 9) == 0,
	   "the buffer member has its bytes, its length member its value");
	ok(out.data[1] && strcmp(out.data[1], "tail") == 0, "the next argument follows");

	m = (struct msg){ NULL, 1, NULL, 123 };
	len = encode_struct(&m, err, sizeof err);
	ok(len > 0 && gov_wire_decode_req(frame, (size_t)len, &out, err, sizeof err) == 0,
	   "NULL string and buffer members encode and decode (%s)", err);
	gov_wire_struct_rebuild(&out, 0, &r);
	ok(!r.name && !r.data && r.len == 123, "NULL stays NULL, the length as it was");

	m = (struct msg){ "", 1, "x", 0 };
	len = encode_struct(&m, err, sizeof err);
	ok(len > 0 && gov_wire_decode_req(frame, (size_t)len, &out, err, sizeof err) == 0,
	   "an empty string and a zero-length buffer member (%s)", err);
	gov_wire_struct_rebuild(&out, 0, &r);
	ok(r.name && !r.name[0] && r.data && r.len == 0, "are empty, not NULL");

	/* malformed: the member words are checked against the record */
	m = (struct msg){ "abc", 7, "123456789", 9 };
	len = encode_struct(&m, err, sizeof err);
	struct gov_wire_arg *a = (struct gov_wire_arg *)(frame + sizeof(struct gov_wire_req));
	char *st = (char *)(a + 1);
	uint64_t w = 100000;
	memcpy(st + 32, &w, 8); /* the string's length word */
	has_str(decode_err(len), "member at offset 0: length 100000 runs past",
		"a member length larger than the frame is refused, naming the member");
	encode_struct(&m, err, sizeof err);
	w = 10;
	memcpy(st + 24, &w, 8); /* the z member says 10, 9 bytes travel */
	has_str(decode_err(len), "its z member at offset 24 says 10",
		"a buffer whose z member disagrees with its bytes is refused");
	encode_struct(&m, err, sizeof err);
	st[32 + 8 + 3] = 'X'; /* the NUL of "abc" */
	has_str(decode_err(len), "member at offset 0: string not NUL-terminated",
		"an unterminated string member is refused");
	encode_struct(&m, err, sizeof err);
	a->len = 32;
	has_str(decode_err(len), "its length word runs past",
		"a record cut short of its members is refused");

	/* a struct without such members still travels as exactly its bytes */
	struct { float x, y, z; } f3 = { 1, 2, 3 };
	struct gov_site s3 = site;
	s3.types = "d{3f}";
	struct gov_call c3 = { { (uint64_t)(uintptr_t)&f3 }, 0 };
	len = gov_wire_encode_req(frame, sizeof frame, 5, &s3, &c3, err, sizeof err);
	ok(len > 0 && gov_wire_decode_req(frame, (size_t)len, &out, err, sizeof err) == 0 &&
	   out.len[0] == 12, "a struct of scalars travels as its 12 bytes (%s)", err);

	static char big[8192];
	m = (struct msg){ "abc", 7, big, sizeof big };
	err[0] = 0;
	ok(encode_struct(&m, err, sizeof err) < 0, "a buffer member larger than the slot is not encoded");
	has_str(err, "do not fit", "and the error says so");

	struct gov_typestr ts;
	const char *why;
	size_t where;
	/* the check in a statement of its own: a call's arguments are evaluated
	 * in no set order, so why must be set before ok() reads it */
	static const struct { const char *t, *why, *what; } bad[] = {
		{ "{si}l", "returned struct", "a returned struct with a string member is refused" },
		{ "l{bi}", "needs a z member", "a buffer member with no z member after it is refused" },
		{ "l{{b}z}", "needs a z member", "its z must be in the same struct" },
		{ "l{2s}", "cannot be an array", "an array of strings is refused" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why = "";
		int r = gov_typestr_check(bad[i].t, &ts, &why, &where);
		ok(r < 0 && strstr(why, bad[i].why), "%s (%s)", bad[i].what, why);
	}
	ok(gov_typestr_check("l{i{sd}bLz}", &ts, &why, &where) == 0 && ts.nptr == 2 &&
	   ts.ptr[0].off == 8 && ts.ptr[1].off == 24 && ts.ptr[1].len_off == 40,
	   "nested members sit at their offsets, a b pairs with the next z, not an L");
}

static void test_reply(void)
{
	char text_buf[128], err[200];
	struct gov_wire_rep r, rep;
	const char *text;
	gov_wire_encode_rep(&r, text_buf, sizeof text_buf, 5, GOV_WIRE_OK, GOV_ACT_DENY, EACCES, 0, NULL);
	ok(gov_wire_decode_rep(&r, text_buf, sizeof text_buf, 5, &rep, &text, err, sizeof err) == 0 &&
	   rep.action == GOV_ACT_DENY && rep.err == EACCES && !text, "a reply round-trips");
	ok(gov_wire_decode_rep(&r, text_buf, sizeof text_buf, 6, &rep, &text, err, sizeof err) < 0,
	   "a reply to another call is refused");
	has_str(err, "field seq", "naming seq");
	gov_wire_encode_rep(&r, text_buf, sizeof text_buf, 5, GOV_WIRE_MALFORMED, 0, 0, 0,
			    "frame field nargs: 40");
	ok(gov_wire_decode_rep(&r, text_buf, sizeof text_buf, 5, &rep, &text, err, sizeof err) == 0 &&
	   text && strcmp(text, "frame field nargs: 40") == 0, "a malformed-frame reply carries its reason");
	ok(gov_wire_decode_rep(&r, text_buf, 4, 5, &rep, &text, err, sizeof err) < 0 &&
	   strstr(err, "field body_len"), "a reply text longer than its buffer is refused by name");
	r.action = 200;
	ok(gov_wire_decode_rep(&r, text_buf, sizeof text_buf, 5, &rep, &text, err, sizeof err) < 0 &&
	   strstr(err, "field action"), "a reply with an unknown action is refused by name");
}

static void test_region_check(void)
{
	size_t size = 1 << 20;
	struct gov_region_hdr *h = calloc(1, size);
	h->magic = GOV_REGION_MAGIC;
	h->version = GOV_REGION_VERSION;
	h->hdr_size = sizeof *h;
	h->size = size;
	h->nslots = 4;
	h->slot_size = 4096;
	h->table_off = 256;
	h->table_cap = 16;
	h->dyn_off = 2048;
	h->dyn_cap = 4096;
	h->slots_off = 8192;
	ok(gov_region_check(h, size) == NULL, "a good region passes");
	h->dyn_cap = 8192;
	ok(gov_region_check(h, size) && strcmp(gov_region_check(h, size), "dyn_off") == 0,
	   "a dynamic rule area running into the slots is named");
	h->dyn_cap = 4096;
	/* the figures' area: after the dynamic rule area, before the slots */
	h->slots_off = 8192 + (uint32_t)((GOV_REGION_STATS_SIZE + 4095) & ~(size_t)4095);
	h->stats_off = 8192;
	ok(gov_region_check(h, size) == NULL, "a good region with the figures' area passes");
	h->stats_off = 8196;
	ok(gov_region_check(h, size) && strcmp(gov_region_check(h, size), "stats_off") == 0,
	   "a figures' area not on 8 bytes is named");
	h->stats_off = 4096;
	ok(gov_region_check(h, size) && strcmp(gov_region_check(h, size), "stats_off") == 0,
	   "a figures' area over the dynamic rule area is named");
	h->stats_off = 8192 + 4096;
	ok(gov_region_check(h, size) && strcmp(gov_region_check(h, size), "stats_off") == 0,
	   "a figures' area running into the slots is named");
	h->stats_off = 0;
	h->slots_off = 8192;
	h->version = GOV_REGION_VERSION + 1;
	ok(gov_region_check(h, size) && strcmp(gov_region_check(h, size), "version") == 0,
	   "a region of another version is refused, naming version");
	h->version = GOV_REGION_VERSION;
	h->magic = 0;
	ok(strcmp(gov_region_check(h, size), "magic") == 0, "a bad magic is named");
	h->magic = GOV_REGION_MAGIC;
	ok(strcmp(gov_region_check(h, size / 2), "size") == 0, "a size that is not the mapping's is named");
	h->nslots = 1000;
	ok(strcmp(gov_region_check(h, size), "slots_off") == 0, "slots past the end are named");
	free(h);
}

static void test_msg_check(void)
{
	struct gov_msg m = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION, .type = GOV_MSG_HELLO };
	ok(gov_msg_check(&m, sizeof m) == NULL, "a good message passes");
	ok(strcmp(gov_msg_check(&m, 10), "length") == 0, "a short message is named");
	m.type = 99;
	ok(strcmp(gov_msg_check(&m, sizeof m), "type") == 0, "an unknown type is named");
	m.type = GOV_MSG_HELLO;
	memset(m.name, 'a', sizeof m.name);
	ok(strcmp(gov_msg_check(&m, sizeof m), "name") == 0, "an unterminated name is named");
}

int main(void)
{
	test_roundtrip();
	test_known_types();
	test_malformed();
	test_too_big();
	test_struct_members();
	test_reply();
	test_region_check();
	test_msg_check();
	return done_testing();
}
