/* gov/xcall.h - cross-resource invocation: the frames agents exchange on
 * an edge, and the frames an agent exchanges with a process that serves
 * its resource's exported functions.
 *
 * One frame format for every hop after the caller's slot: a fixed header
 * (struct gov_xcall_hdr) and body_len bytes of body.
 *
 *   CALL    caller agent -> callee agent -> serving process; the body is
 *           the call's request frame exactly as the caller's govrt encoded
 *           it (gov/wire.h: callee name, type string, typed arguments)
 *   RESULT  back the same way; the body holds the out-buffers (`o`
 *           arguments), each as many bytes as its capacity, padded to 8
 *   HELLO   caller agent -> callee agent, once per link: who calls, on
 *           which protocol (shm and msgqueue links pass their memory or
 *           queue names over the unix socket that says HELLO)
 *   WELCOME callee agent's answer: status 0 and its epoch, or an errno
 *   GRANT   caller agent -> callee agent on an shm link, callee agent ->
 *           serving process in its mailbox: a direct grant's memfd
 *           (struct gov_xcall_direct) is passed beside it on the socket;
 *           answered by a RESULT (OK: taken, NOT_RUN: refused, text why)
 *   DEFER   caller agent -> callee agent: a call a dynamic rule deferred
 *           (GOV_DYN_DEFER) of a function the callee's resource exports;
 *           the body is the request frame as for CALL, `value` the
 *           tasklet's id (GOV_DYN_ID of its name). The callee's agent
 *           queues it on that tasklet and answers RESULT at once: OK
 *           (queued, value 0) or NOT_RUN with err (docs/tasklet.md). Sent
 *           only to an agent whose WELCOME has GOV_XCALL_FEAT_DEFER.
 *
 * Requests carry (caller_epoch, lane, req_id): a caller agent may keep up
 * to GOV_XCALL_LANES links to one callee, each with one call in flight;
 * req_id grows per call of a caller agent, so it grows on each lane, and
 * the callee's agent keeps each (caller, lane)'s last result, until the
 * lane's next id acknowledges it, so that a resend of the same id is
 * answered without running it twice.
 * This header is not the transport (runtime/agent/edge*.c) and not the
 * codec of the call itself (gov/wire.h). Documented in docs/xcall.md. */
#ifndef GOV_XCALL_H
#define GOV_XCALL_H

#include <stddef.h>
#include <stdint.h>
#include "gov/abi.h"

#define GOV_XCALL_MAGIC 0x58564f47u /* "GOVX" */
#define GOV_XCALL_VERSION 1
#define GOV_XCALL_BODY_MAX (128u * 1024u) /* largest body on any link */
/* A callee's agent forgets a caller agent epoch silent this long (seconds):
 * a resend after that would run again (docs/xcall.md "At most once"). */
#define GOV_XCALL_RESEND_KEEP_S 600
#define GOV_XCALL_LANES 8 /* links (calls in flight) per caller agent and callee */

enum gov_xcall_type {
	GOV_XCALL_HELLO = 1,
	GOV_XCALL_WELCOME = 2,
	GOV_XCALL_CALL = 3,
	GOV_XCALL_RESULT = 4,
	GOV_XCALL_GRANT = 5,  /* a direct grant offered (below); answered by RESULT */
	GOV_XCALL_DEFER = 6,  /* a deferred call to queue on a tasklet; RESULT */
};

/* WELCOME `features`: what the callee's agent takes beyond CALL and GRANT.
 * An agent older than a feature leaves its bit 0 (the byte was padding),
 * and the caller's agent does not send it what it would refuse. */
#define GOV_XCALL_FEAT_DEFER 1u /* DEFER frames */

/* RESULT status: what the caller can know about the call. */
enum gov_xcall_status {
	GOV_XCALL_OK = 0,        /* it ran: value, err (errno) and out-buffers */
	GOV_XCALL_NOT_RUN = 1,   /* it certainly did not run: err says why */
	GOV_XCALL_UNKNOWN = 2,   /* it may have run (the callee died mid-call) */
	GOV_XCALL_MALFORMED = 3, /* the frame did not decode: not run */
};

/* Edge protocols, in the words rule documents use (protocols: section). */
#define GOV_XCALL_PROTOCOLS(X) X(UNIX, 0, "unix") X(TCP, 1, "tcp") \
	X(MSGQUEUE, 2, "msgqueue") X(SHM, 3, "shm")
enum gov_xcall_proto {
#define GOV_XCALL_PROTO_ENUM(name, code, word) GOV_PROTO_##name = code,
	GOV_XCALL_PROTOCOLS(GOV_XCALL_PROTO_ENUM)
#undef GOV_XCALL_PROTO_ENUM
	GOV_PROTO_COUNT
};

struct gov_xcall_hdr {
	uint32_t magic;        /* GOV_XCALL_MAGIC */
	uint16_t version;      /* GOV_XCALL_VERSION */
	uint16_t type;         /* enum gov_xcall_type */
	uint64_t caller_epoch; /* the caller agent's epoch (HELLO, CALL, RESULT) */
	uint64_t req_id;       /* CALL and its RESULT; WELCOME: callee agent's epoch */
	uint32_t body_len;     /* bytes after the header */
	int32_t err;           /* RESULT: errno after the call, or why not run */
	int64_t value;         /* RESULT: the return value, as in gov_call.ret */
	uint8_t status;        /* RESULT, WELCOME: enum gov_xcall_status / 0 */
	uint8_t proto;         /* HELLO: enum gov_xcall_proto */
	uint8_t lane;          /* CALL, RESULT: which of the caller agent's links
				* to this callee carries it, < GOV_XCALL_LANES */
	uint8_t features;      /* WELCOME: GOV_XCALL_FEAT_* (else 0) */
	uint8_t pad[4];
	char name[GOV_NAME_MAX]; /* HELLO: caller resource; WELCOME: callee */
	char text[96];         /* HELLO msgqueue: queue names; RESULT: why */
};

/* A pair of one-frame mailboxes in shared memory (a memfd): how shm links
 * carry frames between two agents, and how an agent hands calls to a
 * serving process that asked for it. mb[0] carries requests, mb[1]
 * replies. A writer copies the frame, sets len and bumps seq; a reader
 * spins on seq, then sleeps on it as a futex after setting `sleeping`, which
 * tells the writer to wake it. One frame in flight per direction. The
 * writer also notes the CPU it posted from: a reader on that CPU cannot
 * see the next frame until the writer runs, so it yields at once instead
 * of spinning (docs/xcall.md "Direct calls", one CPU). */
#define GOV_XCALL_FRAME_MAX (sizeof(struct gov_xcall_hdr) + GOV_XCALL_BODY_MAX)
struct gov_xcall_mailbox {
	_Alignas(64) volatile uint32_t seq;  /* bumped by the writer per frame */
	volatile uint32_t sleeping;          /* 1 while the reader sleeps on seq */
	uint32_t len;                        /* bytes of the frame in data */
	volatile uint32_t cpu;               /* 1 + the writer's CPU at its last post; 0 unknown */
	/* The frame starts on seq's cache line: the line the reader fetches
	 * to see seq change brings the frame's first 48 bytes with it (all
	 * of a direct call's RESULT, below), one transfer fewer per frame. */
	unsigned char data[GOV_XCALL_FRAME_MAX];
};
struct gov_xcall_box {
	struct gov_xcall_mailbox mb[2];      /* [0] requests, [1] replies */
};

/* A direct grant (docs/xcall.md "Direct calls"): boxes in a memfd that
 * the caller's agent creates for one edge and the callee's agent hands to
 * one of its serving processes, which serves each box with a thread of its
 * own. The caller's govrt then puts CALL frames straight into a box and
 * waits for the RESULT there: two handoffs instead of six, no agent on the
 * data path. A caller thread takes a box by setting owner from 0 to its
 * tid, then checks revoked (either agent or the server sets it, never
 * clears it): with both sides sequentially consistent, whoever revokes
 * and then waits for owners to go back to 0 has drained every direct call.
 * A box whose call was abandoned (timeout, server gone) keeps owner
 * GOV_XCALL_DBOX_LOST: a late RESULT must not answer a later call. The
 * counters are the caller's, written by the box's owner, read by the
 * caller's agent for the edge's statistics.
 * Frames in a box are a struct gov_xcall_dhdr and its body (below), not
 * the agents' 208-byte header. */
#define GOV_XCALL_DIRECT_MAGIC 0x44564f47u /* "GOVD" */
#define GOV_XCALL_DIRECT_VERSION 2 /* 2: frames in boxes are gov_xcall_dhdr */
#define GOV_XCALL_DIRECT_BOXES 4
#define GOV_XCALL_DBOX_LOST 0xffffffffu
struct gov_xcall_dbox {
	_Alignas(64) volatile uint32_t owner; /* 0 free, a tid, or DBOX_LOST */
	uint32_t reply_seen;                  /* the caller's: last RESULT's seq */
	uint64_t calls, ok, not_run, unknown, ns; /* this box's direct calls */
	struct gov_xcall_box box;
};
struct gov_xcall_direct {
	uint32_t magic, version;        /* GOV_XCALL_DIRECT_MAGIC, _VERSION */
	volatile uint32_t revoked;      /* 1: take the agents' path */
	volatile int32_t server_pid;    /* the serving process, once it took it */
	uint32_t timeout_ms;            /* the caller agent's forward timeout */
	uint32_t pad;
	char from[GOV_NAME_MAX], to[GOV_NAME_MAX];
	struct gov_xcall_dbox dbox[GOV_XCALL_DIRECT_BOXES];
};

/* The header of a frame in a direct box: a CALL (body: the request frame,
 * gov/wire.h) or its RESULT (body: the out-buffers, as in RESULT above).
 * Only what those two need: the box names the caller and the callee, and
 * no text travels (the caller has no use for it; a refusal's errno
 * says why). 32 bytes, so that a RESULT with no out-buffers fits on the
 * mailbox's first cache line with seq. */
struct gov_xcall_dhdr {
	uint16_t type;         /* GOV_XCALL_CALL or GOV_XCALL_RESULT */
	uint8_t status;        /* RESULT: enum gov_xcall_status */
	uint8_t pad;
	uint32_t body_len;     /* bytes after the header */
	uint64_t req_id;       /* the caller's count; the RESULT echoes it */
	int64_t value;         /* RESULT: the return value, as in gov_call.ret */
	int32_t err;           /* RESULT: errno after the call, or why not run */
	uint32_t pad2;
};

/* Checks a direct frame's header; len is the frame's length. Returns NULL
 * or the name of the first bad field. */
static inline const char *gov_xcall_dhdr_check(const struct gov_xcall_dhdr *h, size_t len)
{
	if (len < sizeof *h) return "length";
	if (h->type != GOV_XCALL_CALL && h->type != GOV_XCALL_RESULT) return "type";
	if (h->body_len > GOV_XCALL_BODY_MAX || h->body_len != len - sizeof *h) return "body_len";
	if (h->status > GOV_XCALL_MALFORMED) return "status";
	return 0;
}

/* A serving process's HELLO (role server, gov/wire.h) puts this in its
 * `size` field to ask for a mailbox: the WELCOME then carries a memfd of a
 * struct gov_xcall_serve (below), and CALL and RESULT frames travel through it
 * instead of the socket (which stays open: its end of file says who left). */
#define GOV_XCALL_SERVE_SHARED 1

/* The memfd of a serving process's mailbox (GOV_XCALL_SERVE_SHARED): the
 * two mailboxes, then a liveness probe that no function call can hold up.
 * A call that the agent brings may wait behind a long one (a direct call,
 * say) for the process's function lock; to tell such a busy process from a
 * hung one, the agent bumps `ping` and wakes it as a futex, and a thread
 * of the serving process that does nothing else copies it to `pong` and
 * wakes that (docs/xcall.md "Busy or hung"). A stopped or starved process
 * does not answer. */
struct gov_xcall_serve {
	struct gov_xcall_box box;
	_Alignas(64) volatile uint32_t ping;  /* the agent's probes, counted */
	volatile uint32_t pong;               /* the last probe answered */
	/* how many calls the process may run at once, from its resource's
	 * declaration (`concurrency:`, 0 = one); the agent writes it, then
	 * probes, and the probe's answer takes it in */
	volatile uint32_t concurrency;
};

/* Checks a received header of a frame len bytes long (header + body).
 * Returns NULL or the name of the first bad field. */
static inline const char *gov_xcall_check(const struct gov_xcall_hdr *h, size_t len)
{
	if (len < sizeof *h) return "length";
	if (h->magic != GOV_XCALL_MAGIC) return "magic";
	if (h->version != GOV_XCALL_VERSION) return "version";
	if (h->type < GOV_XCALL_HELLO || h->type > GOV_XCALL_DEFER) return "type";
	if (h->body_len > GOV_XCALL_BODY_MAX || h->body_len != len - sizeof *h) return "body_len";
	if (h->status > GOV_XCALL_MALFORMED) return "status";
	if (h->proto >= GOV_PROTO_COUNT) return "proto";
	if (h->lane >= GOV_XCALL_LANES) return "lane";
	for (size_t i = 0; i < sizeof h->name; i++)
		if (!h->name[i]) goto name_ok;
	return "name";
name_ok:
	for (size_t i = 0; i < sizeof h->text; i++)
		if (!h->text[i]) return 0;
	return "text";
}

#endif
