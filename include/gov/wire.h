/* gov/wire.h - the wire format: one call and its reply, and the messages
 * a process and its agent exchange on their unix socket.
 *
 * A call frame is what govrt writes into its slot (and what agents will
 * forward between each other): a fixed header, then one gov_wire_arg per
 * argument, each followed by its bytes (strings and input buffers) padded to
 * 8. All integers are little-endian, as on the only architecture we run on.
 * The codec (runtime/wire.c) is the only code that builds or parses frames;
 * a frame that does not decode is refused with the name of the bad field.
 * Documented in docs/wire.md.
 */
#ifndef GOV_WIRE_H
#define GOV_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "gov/abi.h"
#include "gov/typestr.h"

#define GOV_WIRE_VERSION 2 /* 2: type strings with structs, 48 bytes */
#define GOV_WIRE_REQ_MAGIC 0x51564f47u /* "GOVQ" */
#define GOV_WIRE_REP_MAGIC 0x50564f47u /* "GOVP" */

struct gov_wire_req {
	uint32_t magic;
	uint16_t version;
	uint8_t kind;          /* enum gov_site_kind */
	uint8_t nargs;
	uint64_t seq;          /* the call's sequence number, echoed in the reply */
	uint64_t site_id;
	int32_t sysno;
	uint32_t body_len;     /* bytes of arguments after this header */
	char callee[GOV_NAME_MAX];
	char types[GOV_TYPES_MAX]; /* the site's type string, NUL-terminated */
};

struct gov_wire_arg {
	uint8_t type;          /* enum gov_type */
	uint8_t pad[3];
	uint32_t len;          /* bytes following this record (0 for scalars) */
	uint64_t value;        /* scalar value, or the original pointer (a
				* struct's: the caller's copy of it) */
};

enum gov_wire_status {
	GOV_WIRE_OK = 0,
	GOV_WIRE_MALFORMED = 1, /* the request did not decode; text says why */
};

struct gov_wire_rep {
	uint32_t magic;
	uint16_t version;
	uint8_t status;        /* enum gov_wire_status */
	uint8_t action;        /* enum gov_action */
	uint64_t seq;
	int32_t err;           /* errno for DENY */
	uint32_t body_len;     /* bytes after the header: error text if MALFORMED */
	int64_t value;         /* return value for EMULATE */
};

/* A decoded request: pointers into the frame it came from. */
struct gov_wire_call {
	const struct gov_wire_req *hdr;
	uint8_t type[GOV_MAX_ARGS];
	uint64_t value[GOV_MAX_ARGS];
	const void *data[GOV_MAX_ARGS]; /* bytes of s, b and { arguments, else NULL */
	uint32_t len[GOV_MAX_ARGS];
	struct gov_typestr ts;          /* the parsed type string */
};

/* Builds the request for `site` called with `call` into buf. Returns its
 * length, or -1 with a reason in err (e.g. a buffer larger than cap). */
long gov_wire_encode_req(void *buf, size_t cap, uint64_t seq,
			 const struct gov_site *site, const struct gov_call *call,
			 char *err, size_t errlen);

/* A struct argument's string or buffer member that is NULL: its length
 * word on the wire (docs/wire.md). */
#define GOV_WIRE_NULL_LEN UINT64_MAX

/* Writes argument i of a decoded call, a struct, into dst (its size): its
 * bytes, with each string and buffer member pointing at its bytes in the
 * frame (NULL stays NULL). The frame must outlive dst's use. */
void gov_wire_struct_rebuild(const struct gov_wire_call *c, int i, void *dst);

/* The same with the site's type string already parsed into *ts (by
 * gov_typestr_check): a caller that calls a site often parses it once. */
long gov_wire_encode_req_ts(void *buf, size_t cap, uint64_t seq,
			    const struct gov_site *site, const struct gov_call *call,
			    const struct gov_typestr *ts, char *err, size_t errlen);

/* Checks and decodes a request of len bytes. Returns 0, or -1 with the
 * bad field and why in err; nothing is trusted before it returns 0. */
int gov_wire_decode_req(const void *buf, size_t len, struct gov_wire_call *out,
			char *err, size_t errlen);
/* The same, told a type string the request is expected to carry (known)
 * and its parse (known_ts): a request whose type string is exactly known
 * takes known_ts instead of parsing it again (a serving process knows its
 * exports'); any other is parsed and checked as above. */
int gov_wire_decode_req_known(const void *buf, size_t len, const char *known,
			      const struct gov_typestr *known_ts, struct gov_wire_call *out,
			      char *err, size_t errlen);

/* govrt_tasklet_schedule's request (runtime/tasklet.c, answered by
 * runtime/agent/tasklet.c, docs/tasklet.md): a CALL-kind frame of this
 * callee, which no C function can be named, with types GOV_TASKLET_TYPES
 * (the tasklet's name, the function, its argument). The agent answers
 * EMULATE with value 0 (queued) or a positive errno. */
#define GOV_TASKLET_CALLEE "gov:tasklet_schedule"
#define GOV_TASKLET_TYPES "lssl"

/* A reply is its header and, for MALFORMED, a text of body_len bytes. The
 * two may sit apart: in a slot the header shares the cache line of the
 * slot's state word (one line for the caller to read back) and the text goes
 * in the payload; on a stream the text follows the header.
 * Writes the header into *rep and the text (may be NULL) into text_buf;
 * returns the text's length. */
size_t gov_wire_encode_rep(struct gov_wire_rep *rep, void *text_buf, size_t text_cap,
			   uint64_t seq, uint8_t status, uint8_t action, int32_t err,
			   int64_t value, const char *text);

/* Checks a reply against the request it answers (seq); text_buf holds
 * text_cap bytes where its text may be. Returns 0, or -1 with the bad field
 * in err. */
int gov_wire_decode_rep(const struct gov_wire_rep *rep, const void *text_buf,
			size_t text_cap, uint64_t seq, struct gov_wire_rep *out,
			const char **text, char *err, size_t errlen);

/* ---- messages on the unix socket (SOCK_SEQPACKET, one per packet) ---- */

#define GOV_MSG_MAGIC 0x4d564f47u /* "GOVM" */

enum gov_msg_type {
	GOV_MSG_HELLO = 1,   /* process -> agent: who I am */
	GOV_MSG_WELCOME = 2, /* agent -> process: region fd attached, or refusal */
	GOV_MSG_TABLE = 3,   /* agent -> process: the decision table changed */
	GOV_MSG_GRANT = 4,   /* agent -> process: a direct grant's memfd attached
			      * (gov/xcall.h); size = its id, name = the callee */
};

/* HELLO flags: what the process can take. */
#define GOV_HELLO_DIRECT 1u /* GRANT messages: FORWARD rows may carry a grant id */

/* A server is a process that serves its resource's exported functions:
 * after WELCOME the agent sends it CALL frames (gov/xcall.h) on the socket
 * and it answers each with a RESULT. */
enum gov_role { GOV_ROLE_PROCESS = 1, GOV_ROLE_CONTROL = 2, GOV_ROLE_SERVER = 3 };

struct gov_msg {
	uint32_t magic;
	uint16_t version;     /* GOV_WIRE_VERSION */
	uint16_t type;        /* enum gov_msg_type */
	int32_t status;       /* WELCOME: 0, or the errno of a refusal */
	uint32_t role;        /* HELLO: enum gov_role */
	uint64_t epoch;       /* WELCOME: the agent's epoch */
	uint64_t size;        /* WELCOME: region size */
	int32_t pid;          /* HELLO */
	uint32_t flags;       /* HELLO: GOV_HELLO_* */
	char name[GOV_NAME_MAX]; /* HELLO: resource; WELCOME: agent's resource */
	char text[160];       /* WELCOME: why a refusal */
};

/* Checks a message's header; returns NULL or the name of the bad field. */
static inline const char *gov_msg_check(const struct gov_msg *m, size_t len)
{
	if (len != sizeof *m) return "length";
	if (m->magic != GOV_MSG_MAGIC) return "magic";
	if (m->version != GOV_WIRE_VERSION) return "version";
	if (m->type < GOV_MSG_HELLO || m->type > GOV_MSG_GRANT) return "type";
	if (!memchr(m->name, 0, sizeof m->name)) return "name";
	if (!memchr(m->text, 0, sizeof m->text)) return "text";
	return 0;
}

#endif
