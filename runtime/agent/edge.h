/* runtime/agent/edge.h - govagent's cross-resource calls: the rules that say
 * which functions are forwarded where and on which protocol (edge.c), the
 * links that carry frames between two agents on each protocol
 * (edge_link.c), and the processes of this resource that serve its exported
 * functions. Documented in docs/xcall.md. */
#ifndef GOV_AGENT_EDGE_H
#define GOV_AGENT_EDGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "gov/wire.h"
#include "gov/xcall.h"

struct agent;
struct gov_ruledoc;

/* What the rules in force say about forwarding; part of struct agent_rules,
 * replaced whole with it. */
struct edge_fwd {
	char fn[GOV_NAME_MAX];
	char to[GOV_NAME_MAX]; /* "" = the resource that exports fn */
};
struct edge_proto {
	char to[GOV_NAME_MAX];
	int proto;             /* enum gov_xcall_proto */
	char address[96];      /* tcp: HOST:PORT, or "" */
};
struct edge_cfs {
	char from[GOV_NAME_MAX];
	unsigned weight;
};
struct edge_tasklet {
	char name[GOV_NAME_MAX], fn[GOV_NAME_MAX];
};
struct edge_rules {
	struct edge_fwd *fwd, *exporters; /* exporters: fn -> resource declaring it */
	unsigned nfwd, nexporters;
	struct edge_proto *protos;        /* edges from this agent's resource */
	unsigned nprotos;
	struct edge_cfs *cfs;             /* cfs: weights of callers of this resource */
	unsigned ncfs;
	int cfs_on;                       /* any cfs: entry names this resource */
	struct edge_tasklet *tasklets;    /* tasklets: of this resource (tasklet.c) */
	unsigned ntasklets;
	unsigned concurrency;             /* this resource's declared concurrency: (0: one) */
};
int edge_rules_add(struct edge_rules *e, const struct gov_ruledoc *d, const char *me);
/* A registered resource's record from the store (/resources/NAME, JSON):
 * its exports make it the callee of forwards that name no `to:`. */
int edge_rules_add_resource(struct edge_rules *e, const char *json, size_t len);
void edge_rules_free(struct edge_rules *e);

/* --no-direct: this agent neither asks for nor gives direct grants. */
void edge_no_direct(void);
/* Options: --edge-tcp HOST:PORT (listen for tcp links), --forward-timeout-ms. */
void edge_config(const char *tcp_listen, long forward_timeout_ms);
/* How long the entry of a silent caller agent epoch is kept for resends
 * (--resend-keep-s, default GOV_XCALL_RESEND_KEEP_S). */
void edge_resend_keep(long seconds);
/* Listens for links from other agents (<run dir>/<resource>.edge, and tcp
 * if configured). Returns 0 or -1 with why. */
int edge_start(struct agent *a, char *err, size_t errlen);
void edge_stop(void);
/* A process of this resource said HELLO as a server: it takes fd; shared:
 * the process asked for a mailbox (GOV_XCALL_SERVE_SHARED). */
void edge_add_server(struct agent *a, int fd, pid_t pid, int shared);
/* The rules changed: switch each edge whose protocol changed, after its
 * call in flight (drain, then switch). Called without rules_lock held. */
void edge_rules_changed(struct agent *a);

/* Direct grants (docs/xcall.md "Direct calls"). The id of the grant a
 * FORWARD row for fn may name in a process's table (0: none; write_table
 * puts it in the row's value); and every grant in force sent to process c
 * (client_send_grant), as when it connects. */
struct client;
uint32_t edge_direct_id(const struct edge_rules *er, const char *fn);
void edge_direct_send(struct client *c);

/* A FORWARD decision for a decoded call from a slot (frame, len bytes),
 * to the resource whose gov_dyn_id is to_id (a dynamic rule's forward_to),
 * or with to_id 0 to where the rules say: a function under this
 * resource's tasklets: is queued (tasklet.c), or, when another resource
 * exports it, deferred to its agent (edge_defer); else the rule's to: or
 * the function's exporter.
 * Fills the reply (action FORWARD with value, err and the out-buffers in
 * out, or DENY with why) and returns the reply body's length. Called with
 * rules_lock held for reading; lets go of it for the round trip. */
uint32_t edge_forward(struct agent *a, const struct gov_wire_call *call, const void *frame,
		      uint32_t len, void *out, uint32_t cap, uint32_t to_id, uint8_t *action,
		      int32_t *err, int64_t *value);
/* Forwards a call a dynamic rule deferred (tasklet id, frame of len
 * bytes) to the agent of `to`, which exports its function: that agent
 * queues it on its tasklet (DEFER, gov/xcall.h). 0 once it is queued
 * there, or the errno the caller gets (EAGAIN full, ENOMEM, ESHUTDOWN
 * stopping, ENOSYS not exported there, EPROTONOSUPPORT an older agent,
 * EHOSTUNREACH/ECONNABORTED/ETIMEDOUT as for a forward). Called with
 * rules_lock held for reading; lets go of it for the round trip. */
int edge_defer(struct agent *a, const char *to, uint32_t id, const void *frame, uint32_t len);
/* The resource whose agent runs fn for a forward: the rule's to:, else
 * the resource that exports it; NULL if none. rules_lock held. */
const char *edge_callee(const struct edge_rules *er, const char *fn);
/* While another thread of the process is in a call (holds a slot): hands the FORWARD call in slot s (decoded as call, len bytes) to a
 * forwarder thread, which answers the slot itself, and returns 1; 0 means
 * forward it here (edge_forward). Called by the client's worker, rules_lock
 * held for reading. */
struct client;
struct gov_slot;
int edge_forward_async(struct agent *a, struct client *c, struct gov_slot *s,
		       const struct gov_wire_call *call, uint32_t len, uint32_t to_id);
/* 1 while slot idx of c is with a forwarder: its worker leaves it alone. */
int edge_slot_busy(const struct client *c, uint32_t idx);
/* Waits until no forwarder holds a slot of c (before its region goes). */
void edge_client_gone(const struct client *c);
/* Runs a CALL on a process of this resource that serves its exports,
 * preferring one with no call in flight (tasklets run side by side).
 * Returns the RESULT's status; the result is in rep and out
 * (GOV_XCALL_BODY_MAX bytes). */
int edge_run_local(struct agent *a, const struct gov_xcall_hdr *h, const void *body,
		   struct gov_xcall_hdr *rep, void *out);
/* ,"xcall":{...} for the statistics: per edge and served. */
size_t edge_stats_json(char *out, size_t cap);

/* ---- links (edge_link.c) ---- */
struct edge_link;
/* Caller side: opens a link to `to` on proto (HELLO, WELCOME); *callee_epoch
 * is the callee agent's epoch. NULL with why on failure. */
struct edge_link *edge_link_open(struct agent *a, const char *to, int proto,
				 const char *address, int timeout_ms, uint64_t *callee_epoch,
				 char *why, size_t whylen);
/* Callee side: a connection accepted on a listener; reads HELLO, sets up
 * the protocol it names, answers WELCOME. NULL with why on failure. */
struct edge_link *edge_link_accept(struct agent *a, int fd, int is_tcp, struct gov_xcall_hdr *hello,
				   char *why, size_t whylen);
int edge_link_send(struct edge_link *l, const struct gov_xcall_hdr *h, const void *body,
		   int timeout_ms);
/* 1, 0 when the peer is gone, or -errno (-ETIMEDOUT). */
int edge_link_recv(struct edge_link *l, struct gov_xcall_hdr *h, void *body, size_t cap,
		   int timeout_ms, char *why, size_t whylen);
int edge_link_proto(const struct edge_link *l);
/* Caller side: what the callee's agent said it takes (GOV_XCALL_FEAT_*). */
unsigned edge_link_features(const struct edge_link *l);
/* 1 if the other agent has visibly closed the link (nothing sent yet can
 * have reached it). */
int edge_link_gone(const struct edge_link *l);
/* shm links only: an fd passed beside the frames, on the socket that said
 * HELLO (a direct grant's memfd). 0 / the fd, or -1. */
int edge_link_pass_fd(struct edge_link *l, int fd);
int edge_link_take_fd(struct edge_link *l, int timeout_ms);
void edge_link_close(struct edge_link *l);
void edge_link_spin(long spin_ns); /* how long shm links spin before sleeping */

/* tcp link authentication (edge_auth.c): the shared key of --edge-key
 * (16 to 4096 bytes, a file only its owner may read), and the challenge
 * and response each side runs on a new tcp link before HELLO. Each returns
 * 0, or -1 with why; a refused link is closed by the caller. */
int edge_auth_load(const char *path, char *why, size_t whylen);
int edge_auth_accept(int fd, char *why, size_t whylen);
int edge_auth_connect(int fd, const char *to, char *why, size_t whylen);

#endif
