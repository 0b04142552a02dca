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
	}
	h->body_len = (uint32_t)(off - sizeof *h);
	return (long)off;
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
		if (a->type == GOV_T_STRUCT && a->len != out->ts.size[i + 1])
			return fail(err, errlen, "frame argument %d field len: %u bytes, the struct "
				    "%.*s is %u", i + 1, a->len, (int)out->ts.len[i + 1],
				    h->types + out->ts.at[i + 1], out->ts.size[i + 1]);
		if (a->len > len - off || PAD8(a->len) > len - off)
			return fail(err, errlen, "frame argument %d field len: %u runs past the end",
				    i + 1, a->len);
		const char *data = (const char *)buf + off;
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
