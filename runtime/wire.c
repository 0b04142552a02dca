/* runtime/wire.c - the one codec of the call wire format (gov/wire.h).
 *
 * Encoding trusts its caller (govrt describing its own call); decoding
 * trusts nothing: every length is checked against the frame before it is
 * used, and the first field found wrong is named in the error. It is not
 * the place for transport (slots, sockets): it only turns bytes into calls. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "gov/typestr.h"
#include "gov/wire.h"
#include "internal.h"

#define PAD8(n) (((n) + 7u) & ~(size_t)7u)

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Bytes that travel after argument i: a string with its NUL, an input
 * buffer whose length is the next size parameter, or a struct's bytes. */
static size_t arg_bytes(const struct gov_typestr *ts, int i, const uint64_t *arg,
			const void **data)
{
	const char *params = ts->top + 1;
	*data = (const void *)(uintptr_t)arg[i];
	if (!*data)
		return 0;
	if (params[i] == GOV_T_STRUCT)
		return ts->size[i + 1];
	if (params[i] == GOV_T_STR)
		return strlen(*data) + 1;
	if (params[i] == GOV_T_BUF)
		for (int j = i + 1; params[j]; j++)
			if (params[j] == GOV_T_SIZE)
				return (size_t)arg[j];
	*data = NULL;
	return 0;
}

/* The string and buffer members of item `item`: ts->ptr[*first ..
 * *first + returned count). */
static unsigned item_ptrs(const struct gov_typestr *ts, unsigned item, unsigned *first)
{
	unsigned k = 0, n = 0;
	while (k < ts->nptr && ts->ptr[k].item < item)
		k++;
	*first = k;
	while (k + n < ts->nptr && ts->ptr[k + n].item == item)
		n++;
	return n;
}

static uint64_t word_at(const void *base, size_t off)
{
	uint64_t w;
	memcpy(&w, (const char *)base + off, sizeof w);
	return w;
}

/* Appends the bytes of a struct argument's string and buffer members after
 * its own (docs/wire.md): per member, a length word (GOV_WIRE_NULL_LEN for
 * NULL) then the bytes padded to 8. Returns the new offset, or 0 if cap is
 * too small. */
static size_t put_members(char *buf, size_t off, size_t cap, const struct gov_typestr *ts,
			  unsigned item, const void *st)
{
	unsigned first, n = item_ptrs(ts, item, &first);
	for (unsigned k = first; k < first + n; k++) {
		const char *p = (const char *)(uintptr_t)word_at(st, ts->ptr[k].off);
		uint64_t len = !p ? GOV_WIRE_NULL_LEN
			       : ts->ptr[k].code == GOV_T_STR ? strlen(p) + 1
							       : word_at(st, ts->ptr[k].len_off);
		size_t bytes = p ? len : 0;
		if (p && (len > cap || off + 8 + PAD8(bytes) > cap))
			return 0;
		if (off + 8 > cap)
			return 0;
		memcpy(buf + off, &len, 8);
		off += 8;
		if (bytes) {
			memcpy(buf + off, p, bytes);
			memset(buf + off + bytes, 0, PAD8(bytes) - bytes);
			off += PAD8(bytes);
		}
	}
	return off;
}

long gov_wire_encode_req(void *buf, size_t cap, uint64_t seq,
			 const struct gov_site *site, const struct gov_call *call,
			 char *err, size_t errlen)
{
	const char *types = site->types ? site->types : "l";
	struct gov_typestr ts;
	const char *why;
	size_t where;
	if (gov_typestr_check(types, &ts, &why, &where) < 0)
		return fail(err, errlen, "site %s: type string \"%s\" at %zu: %s",
			    site->callee ? site->callee : "?", types, where + 1, why);
	return gov_wire_encode_req_ts(buf, cap, seq, site, call, &ts, err, errlen);
}

long gov_wire_encode_req_ts(void *buf, size_t cap, uint64_t seq,
			    const struct gov_site *site, const struct gov_call *call,
			    const struct gov_typestr *plan, char *err, size_t errlen)
{
	struct gov_wire_req *h = buf;
	const char *types = site->types ? site->types : "l";
	const struct gov_typestr ts = *plan;
	if (cap < sizeof *h)
		return fail(err, errlen, "frame buffer of %zu bytes is too small", cap);
	h->magic = GOV_WIRE_REQ_MAGIC;
	h->version = GOV_WIRE_VERSION;
	h->kind = site->kind;
	h->nargs = (uint8_t)(ts.n - 1);
	h->seq = seq;
	h->site_id = site->id;
	h->sysno = site->sysno;
	size_t clen = site->callee ? strnlen(site->callee, sizeof h->callee - 1) : 0;
	memcpy(h->callee, site->callee ? site->callee : "", clen);
	h->callee[clen] = 0;
	memset(h->types, 0, sizeof h->types);
	memcpy(h->types, types, strlen(types) + 1);

	const char *params = ts.top + 1;
	size_t off = sizeof *h;
	for (int i = 0; i < h->nargs; i++) {
		const void *data;
		size_t n = arg_bytes(&ts, i, call->arg, &data);
		if (params[i] == GOV_T_STRUCT && !data)
			return fail(err, errlen, "argument %d of %s: a struct by value at address 0",
				    i + 1, h->callee);
		if (off + sizeof(struct gov_wire_arg) + PAD8(n) > cap)
			return fail(err, errlen,
				    "argument %d of %s: %zu bytes do not fit in the slot's %zu",
				    i + 1, h->callee, n, cap - sizeof *h);
		struct gov_wire_arg *a = (struct gov_wire_arg *)((char *)buf + off);
		a->type = (uint8_t)params[i];
		memset(a->pad, 0, sizeof a->pad);
		a->len = (uint32_t)n;
		a->value = call->arg[i];
		off += sizeof *a;
		if (n) {
			memcpy((char *)buf + off, data, n);
			memset((char *)buf + off + n, 0, PAD8(n) - n);
			off += PAD8(n);
		}
		unsigned first;
		if (params[i] == GOV_T_STRUCT && item_ptrs(&ts, (unsigned)i + 1, &first)) {
			size_t end = put_members(buf, off, cap, &ts, (unsigned)i + 1, data);
			if (!end)
				return fail(err, errlen, "argument %d of %s: the strings and buffers "
					    "of the struct do not fit in the slot's %zu bytes",
					    i + 1, h->callee, cap - sizeof *h);
			a->len = (uint32_t)(end - off + PAD8(n));
			off = end;
		}
	}
	h->body_len = (uint32_t)(off - sizeof *h);
	return (long)off;
}

/* Checks the string and buffer members that follow a struct argument's
 * bytes (data, len bytes in all): each length word within the record, a
 * buffer's equal to its z member, a string NUL-terminated, nothing left. */
static int check_members(const char *data, uint32_t len, const struct gov_typestr *ts,
			 unsigned first, unsigned n, int arg, char *err, size_t errlen)
{
	size_t off = PAD8(ts->size[arg]);
	for (unsigned k = first; k < first + n; k++) {
		const struct gov_member_ptr *m = &ts->ptr[k];
		if (len - off < 8)
			return fail(err, errlen, "frame argument %d member at offset %u: its length "
				    "word runs past the argument's %u bytes", arg, m->off, len);
		uint64_t n_bytes = word_at(data, off);
		off += 8;
		if (n_bytes == GOV_WIRE_NULL_LEN)
			continue;
		if (n_bytes > len - off || PAD8(n_bytes) > len - off)
			return fail(err, errlen, "frame argument %d member at offset %u: length %llu "
				    "runs past the argument's %u bytes", arg, m->off,
				    (unsigned long long)n_bytes, len);
		if (m->code == GOV_T_BUF && n_bytes != word_at(data, m->len_off))
			return fail(err, errlen, "frame argument %d member at offset %u: %llu bytes "
				    "of buffer, its z member at offset %u says %llu", arg, m->off,
				    (unsigned long long)n_bytes, m->len_off,
				    (unsigned long long)word_at(data, m->len_off));
		if (m->code == GOV_T_STR && (!n_bytes || data[off + n_bytes - 1] != 0))
			return fail(err, errlen, "frame argument %d member at offset %u: string not "
				    "NUL-terminated", arg, m->off);
		off += PAD8(n_bytes);
	}
	if (off != len)
		return fail(err, errlen, "frame argument %d field len: %u bytes, its struct and "
			    "members are %zu", arg, len, off);
	return 0;
}

void gov_wire_struct_rebuild(const struct gov_wire_call *c, int i, void *dst)
{
	const char *data = c->data[i];
	memcpy(dst, data, c->ts.size[i + 1]);
	unsigned first, n = item_ptrs(&c->ts, (unsigned)i + 1, &first);
	size_t off = PAD8(c->ts.size[i + 1]);
	for (unsigned k = first; k < first + n; k++) {
		uint64_t n_bytes = word_at(data, off);
		const void *p = NULL;
		off += 8;
		if (n_bytes != GOV_WIRE_NULL_LEN) {
			p = data + off;
			off += PAD8(n_bytes);
		}
		memcpy((char *)dst + c->ts.ptr[k].off, &p, sizeof p);
	}
}

int gov_wire_decode_req(const void *buf, size_t len, struct gov_wire_call *out,
			char *err, size_t errlen)
{
	return gov_wire_decode_req_known(buf, len, NULL, NULL, out, err, errlen);
}

int gov_wire_decode_req_known(const void *buf, size_t len, const char *known,
			      const struct gov_typestr *known_ts, struct gov_wire_call *out,
			      char *err, size_t errlen)
{
	const struct gov_wire_req *h = buf;
	memset(out, 0, sizeof *out);
	if (len < sizeof *h)
		return fail(err, errlen, "frame: %zu bytes, shorter than the %zu-byte header",
			    len, sizeof *h);
	if (h->magic != GOV_WIRE_REQ_MAGIC)
		return fail(err, errlen, "frame field magic: 0x%08x, expected 0x%08x",
			    h->magic, GOV_WIRE_REQ_MAGIC);
	if (h->version != GOV_WIRE_VERSION)
		return fail(err, errlen, "frame field version: %u, expected %u",
			    h->version, GOV_WIRE_VERSION);
	if (h->kind != GOV_SITE_CALL && h->kind != GOV_SITE_SYSCALL)
		return fail(err, errlen, "frame field kind: %u is neither call (1) nor syscall (2)",
			    h->kind);
	if (h->nargs > GOV_MAX_ARGS)
		return fail(err, errlen, "frame field nargs: %u exceeds %d", h->nargs, GOV_MAX_ARGS);
	if (!memchr(h->callee, 0, sizeof h->callee))
		return fail(err, errlen, "frame field callee: not NUL-terminated");
	const char *why;
	size_t where;
	if (!memchr(h->types, 0, sizeof h->types))
		return fail(err, errlen, "frame field types: not NUL-terminated");
	if (known && strcmp(h->types, known) == 0)
		out->ts = *known_ts; /* the same string parses the same */
	else if (gov_typestr_check(h->types, &out->ts, &why, &where) < 0)
		return fail(err, errlen, "frame field types: \"%s\" at %zu: %s", h->types,
			    where + 1, why);
	if (out->ts.n != (unsigned)h->nargs + 1u)
		return fail(err, errlen, "frame field types: needs 1 + nargs (%u) items", h->nargs);
	if (h->body_len != len - sizeof *h)
		return fail(err, errlen, "frame field body_len: %u, but %zu bytes follow the header",
			    h->body_len, len - sizeof *h);

	out->hdr = h;
	size_t off = sizeof *h;
	for (int i = 0; i < h->nargs; i++) {
		if (off + sizeof(struct gov_wire_arg) > len)
			return fail(err, errlen, "frame argument %d: record runs past the end", i + 1);
		const struct gov_wire_arg *a = (const void *)((const char *)buf + off);
		off += sizeof *a;
		char code = out->ts.top[i + 1];
		if (a->type != (uint8_t)code)
			return fail(err, errlen, "frame argument %d field type: '%c' (0x%02x), types says '%c'",
				    i + 1, a->type >= 32 && a->type < 127 ? a->type : '?', a->type,
				    code);
		if (a->len && a->type != GOV_T_STR && a->type != GOV_T_BUF && a->type != GOV_T_STRUCT)
			return fail(err, errlen, "frame argument %d field len: %u bytes for a scalar",
				    i + 1, a->len);
		unsigned first, nptr = item_ptrs(&out->ts, (unsigned)i + 1, &first);
		if (a->type == GOV_T_STRUCT && (nptr ? a->len < PAD8(out->ts.size[i + 1])
						      : a->len != out->ts.size[i + 1]))
			return fail(err, errlen, "frame argument %d field len: %u bytes, the struct "
				    "%.*s is %u", i + 1, a->len, (int)out->ts.len[i + 1],
				    h->types + out->ts.at[i + 1], out->ts.size[i + 1]);
		if (a->len > len - off || PAD8(a->len) > len - off)
			return fail(err, errlen, "frame argument %d field len: %u runs past the end",
				    i + 1, a->len);
		const char *data = (const char *)buf + off;
		if (nptr && check_members(data, a->len, &out->ts, first, nptr, i + 1, err,
					  errlen) < 0)
			return -1;
		if (a->type == GOV_T_STR && a->len && data[a->len - 1] != 0)
			return fail(err, errlen, "frame argument %d: string not NUL-terminated", i + 1);
		out->type[i] = a->type;
		out->value[i] = a->value;
		out->len[i] = a->len;
		out->data[i] = a->len ? data : NULL;
		off += PAD8(a->len);
	}
	if (off != len)
		return fail(err, errlen, "frame: %zu bytes left over after %u arguments",
			    len - off, h->nargs);
	return 0;
}

size_t gov_wire_encode_rep(struct gov_wire_rep *r, void *text_buf, size_t text_cap,
			   uint64_t seq, uint8_t status, uint8_t action, int32_t err,
			   int64_t value, const char *text)
{
	size_t n = text ? strlen(text) + 1 : 0;
	if (n > text_cap)
		n = text_cap;
	r->magic = GOV_WIRE_REP_MAGIC;
	r->version = GOV_WIRE_VERSION;
	r->status = status;
	r->action = action;
	r->seq = seq;
	r->err = err;
	r->value = value;
	r->body_len = (uint32_t)n;
	if (n) {
		memcpy(text_buf, text, n);
		((char *)text_buf)[n - 1] = 0;
	}
	return n;
}

int gov_wire_decode_rep(const struct gov_wire_rep *r, const void *text_buf,
			size_t text_cap, uint64_t seq, struct gov_wire_rep *out,
			const char **text, char *err, size_t errlen)
{
	*text = NULL;
	memcpy(out, r, sizeof *out);
	if (out->magic != GOV_WIRE_REP_MAGIC)
		return fail(err, errlen, "reply field magic: 0x%08x", out->magic);
	if (out->version != GOV_WIRE_VERSION)
		return fail(err, errlen, "reply field version: %u", out->version);
	if (out->seq != seq)
		return fail(err, errlen, "reply field seq: %llu answers another call (%llu)",
			    (unsigned long long)out->seq, (unsigned long long)seq);
	if (out->status > GOV_WIRE_MALFORMED)
		return fail(err, errlen, "reply field status: %u", out->status);
	if (out->action >= GOV_ACT_COUNT)
		return fail(err, errlen, "reply field action: %u", out->action);
	if (out->body_len > text_cap)
		return fail(err, errlen, "reply field body_len: %u exceeds %zu", out->body_len, text_cap);
	if (out->body_len && out->status == GOV_WIRE_MALFORMED) {
		const char *t = text_buf;
		if (t[out->body_len - 1] != 0)
			return fail(err, errlen, "reply text: not NUL-terminated");
		*text = t;
	}
	return 0;
}
