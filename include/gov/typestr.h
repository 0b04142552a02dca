/* gov/typestr.h - reading a type string (gov/types.def): which code each
 * parameter has, and the layout of a struct passed or returned by value.
 *
 * A type string is the return item then one item per parameter. An item is
 * one code, or a struct: `{` MEMBERS `}`, each member a scalar code
 * (i u l L z d f p, or c and h, the 1- and 2-byte integers that exist only
 * inside a struct) or a nested struct, optionally preceded by a decimal
 * count for a fixed array (`{3di}` is struct { double a[3]; int b; }).
 * Sizes and alignments are those of C on x86-64 (i/u/f 4, l/L/z/d/p 8,
 * c 1, h 2); a struct is aligned to its largest member and padded to it.
 * A member may also be a string `s` or an input buffer `b` (8-byte
 * pointers): a `b` member's length is the next `z` member of the same
 * struct, the positional rule of parameters. Their bytes travel after the
 * struct's (docs/wire.md), so they cannot be array elements (no count
 * before an `s`, a `b`, or a struct holding one), and a struct holding one
 * cannot be returned: its pointers would point into the callee. Out-buffers
 * cannot be members; a pointer member `p` travels as an address
 * meaningless to the callee.
 *
 * Header-only so that govrt, govagent, govctl and the tools read type
 * strings with one parser. It is not the codec (gov/wire.h) and does not
 * know libffi. Documented in docs/abi.md ("Type codes"). */
#ifndef GOV_TYPESTR_H
#define GOV_TYPESTR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "gov/abi.h"

#define GOV_TYPES_MAX 48       /* a type string's bytes, NUL included */
#define GOV_STRUCT_MAX 4096    /* the largest struct carried by value */
#define GOV_STRUCT_DEPTH 4     /* structs nest at most this deep */
#define GOV_STRUCT_PTRS 16     /* string and buffer members in a type string */

/* A string or buffer member of a struct item: where its pointer is in the
 * struct's bytes and, for a buffer, where its length (the z member) is. */
struct gov_member_ptr {
	uint8_t item;      /* the item of the type string (1.. a parameter) */
	char code;         /* 's' or 'b' */
	uint16_t off;      /* offset of the pointer in the struct */
	uint16_t len_off;  /* 'b': offset of its z member; 's': 0 */
};

/* A parsed type string. Item 0 is the return type, items 1.. the
 * parameters; top[] holds one code per item ('{' for a struct) so that
 * positional rules (a `b` pairs with the next `z`) read it like a string. */
struct gov_typestr {
	unsigned n;                        /* items: 1 + parameters */
	char top[GOV_MAX_ARGS + 2];        /* NUL-terminated */
	uint32_t size[GOV_MAX_ARGS + 1];   /* a struct item's size, else 0 */
	uint32_t align[GOV_MAX_ARGS + 1];
	uint8_t at[GOV_MAX_ARGS + 1];      /* where the item starts in the string */
	uint8_t len[GOV_MAX_ARGS + 1];     /* and its characters */
	unsigned nptr;                     /* string and buffer members, */
	struct gov_member_ptr ptr[GOV_STRUCT_PTRS]; /* by item then offset */
};

/* Size and alignment of a scalar member code, 0 if it is none. */
static inline unsigned gov_member_size(char c)
{
	switch (c) {
	case 'c': return 1;
	case 'h': return 2;
	case 'i': case 'u': case 'f': return 4;
	case 'l': case 'L': case 'z': case 'd': case 'p': case 's': case 'b': return 8;
	}
	return 0;
}

/* Parses the struct at t[*pos] ('{'), advancing *pos past its '}'.
 * Records its string and buffer members in ts->ptr (offsets from this
 * struct's start) as item `item`. Returns 0 with its size and alignment, or
 * -1 with why (*pos at fault). */
static inline int gov__struct_layout(const char *t, size_t *pos, int depth,
				     struct gov_typestr *ts, unsigned item,
				     uint32_t *size, uint32_t *align, const char **why)
{
	size_t off = 0, al = 1;
	unsigned unpaired = ts->nptr; /* b members from here on still want a z */
	if (depth > GOV_STRUCT_DEPTH) {
		*why = "structs nest more than 4 deep";
		return -1;
	}
	(*pos)++; /* '{' */
	if (t[*pos] == '}') {
		*why = "a struct needs at least one member";
		return -1;
	}
	while (t[*pos] != '}') {
		unsigned long count = 1;
		size_t count_at = *pos;
		if (t[*pos] >= '0' && t[*pos] <= '9') {
			if (t[*pos] == '0') {
				*why = "an array count starts with 1..9";
				return -1;
			}
			for (count = 0; t[*pos] >= '0' && t[*pos] <= '9'; (*pos)++)
				if ((count = count * 10 + (unsigned long)(t[*pos] - '0')) > GOV_STRUCT_MAX) {
					*why = "an array count is larger than the largest struct";
					return -1;
				}
		}
		uint32_t ms, ma;
		unsigned first = ts->nptr;
		char code = t[*pos];
		if (code == '{') {
			if (gov__struct_layout(t, pos, depth + 1, ts, item, &ms, &ma, why) < 0)
				return -1;
		} else if ((ms = ma = gov_member_size(code)) != 0) {
			(*pos)++;
		} else {
			*why = code ? "not a struct member code (c h i u l L z d f p s b, or a struct)"
				    : "a struct has no closing }";
			return -1;
		}
		off = (off + ma - 1) / ma * ma;
		if (t[count_at] != code && (code == 's' || code == 'b' || ts->nptr > first)) {
			*pos = count_at;
			*why = "a string or buffer member (or a struct holding one) cannot be an array";
			return -1;
		}
		if (code == 's' || code == 'b') {
			if (ts->nptr >= GOV_STRUCT_PTRS) {
				*pos -= 1;
				*why = "more than 16 string and buffer members";
				return -1;
			}
			ts->ptr[ts->nptr++] = (struct gov_member_ptr){ (uint8_t)item, code,
								       (uint16_t)off, 0 };
		} else if (code == 'z') {
			for (unsigned k = unpaired; k < first; k++)
				if (ts->ptr[k].code == 'b' && !ts->ptr[k].len_off) {
					if (count > 1) {
						*pos = count_at;
						*why = "the z member that is a buffer's length cannot be an array";
						return -1;
					}
					ts->ptr[k].len_off = (uint16_t)off;
				}
			unpaired = ts->nptr;
		} else if (code == '{') {
			/* a nested struct's members sit at its offset in this one; its
			 * own b members were paired inside it */
			for (unsigned k = first; k < ts->nptr; k++) {
				ts->ptr[k].off = (uint16_t)(ts->ptr[k].off + off);
				if (ts->ptr[k].code == 'b')
					ts->ptr[k].len_off = (uint16_t)(ts->ptr[k].len_off + off);
			}
		}
		off += ms * count;
		if (ma > al)
			al = ma;
		if (off > GOV_STRUCT_MAX) {
			*why = "the struct is larger than 4096 bytes";
			return -1;
		}
	}
	for (unsigned k = unpaired; k < ts->nptr; k++)
		if (ts->ptr[k].code == 'b' && !ts->ptr[k].len_off) {
			*why = "a b member needs a z member after it in the same struct (its length)";
			return -1;
		}
	(*pos)++; /* '}' */
	*size = (uint32_t)((off + al - 1) / al * al);
	*align = (uint32_t)al;
	return 0;
}

/* Parses a whole type string. Returns 0, or -1 with why and the offset of
 * the fault in *where. Checks the grammar only: which codes may be a
 * return type or a parameter is the reader's rule (gov_typestr_check). */
static inline int gov_typestr_parse(const char *t, struct gov_typestr *ts, const char **why,
				    size_t *where)
{
	size_t pos = 0;
	memset(ts, 0, sizeof *ts);
	*why = NULL;
	if (strlen(t) >= GOV_TYPES_MAX) {
		*where = GOV_TYPES_MAX - 1;
		*why = "a type string is at most 47 characters";
		return -1;
	}
	while (t[pos]) {
		if (ts->n >= GOV_MAX_ARGS + 1) {
			*where = pos;
			*why = "more than 6 parameters";
			return -1;
		}
		ts->at[ts->n] = (uint8_t)pos;
		if (t[pos] == '{') {
			if (gov__struct_layout(t, &pos, 1, ts, ts->n, &ts->size[ts->n], &ts->align[ts->n],
					       why) < 0) {
				*where = pos;
				return -1;
			}
		} else if (t[pos] == '}' || (t[pos] >= '0' && t[pos] <= '9')) {
			*where = pos;
			*why = "a count or } outside a struct";
			return -1;
		} else {
			pos++;
		}
		ts->len[ts->n] = (uint8_t)(pos - ts->at[ts->n]);
		ts->top[ts->n] = t[ts->at[ts->n]];
		ts->n++;
	}
	if (!ts->n) {
		*where = 0;
		*why = "an empty type string (it needs a return code)";
		return -1;
	}
	return 0;
}

/* Parses t and checks the rules of a call's signature: codes of
 * gov/types.def, `v` only as the return, no string or buffer returned, no
 * member-only code (c, h) outside a struct, a `z` after every `b` and `o`.
 * Returns 0, or -1 with why and where (offset in t). */
static inline int gov_typestr_check(const char *t, struct gov_typestr *ts, const char **why,
				    size_t *where)
{
	if (gov_typestr_parse(t, ts, why, where) < 0)
		return -1;
	for (unsigned i = 0; i < ts->n; i++) {
		char c = ts->top[i];
		*where = ts->at[i];
		switch (c) {
#define GOV_TYPE(code, name, doc, travel) case code:
#include "gov/types.def"
#undef GOV_TYPE
			break;
		default:
			*why = "not a type code of gov/types.def";
			return -1;
		}
		if (c == 'c' || c == 'h') {
			*why = "c and h are struct members only (use i for a char or short)";
			return -1;
		}
		if (i && c == 'v') {
			*why = "v is only a return type";
			return -1;
		}
		if (!i && (c == 's' || c == 'b' || c == 'o')) {
			*why = "a return type must be a scalar, p or a struct";
			return -1;
		}
		if (!i && ts->nptr && ts->ptr[0].item == 0) {
			*why = "a returned struct cannot hold a string or buffer (s, b): its pointers "
			       "would point into the callee's memory";
			return -1;
		}
		if ((c == 'b' || c == 'o') && !strchr(ts->top + i + 1, 'z')) {
			*why = "a b or o parameter needs a z parameter after it (its length)";
			return -1;
		}
	}
	return 0;
}

#endif
