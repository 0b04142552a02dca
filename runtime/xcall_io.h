/* runtime/xcall_io.h - sending and receiving cross-resource frames
 * (gov/xcall.h) on a socket, and the out-buffer layout of a call: shared by
 * govrt (xcall.c, invoke.c) and govagent (agent/edge*.c). Not installed.
 * It is not a transport: the agents' protocols live in agent/edge*.c. */
#ifndef GOV_RUNTIME_XCALL_IO_H
#define GOV_RUNTIME_XCALL_IO_H

#include <stddef.h>
#include <stdint.h>
#include "gov/xcall.h"

#define GOV_XCALL_PAD8(n) (((size_t)(n) + 7u) & ~(size_t)7u)

/* A header with magic, version and type filled, the rest zero. */
void gov_xcall_init(struct gov_xcall_hdr *h, int type);

/* One frame on fd: on a SOCK_SEQPACKET socket one packet, on a stream the
 * header then the body. Returns 0 or -errno. */
int gov_xcall_send(int fd, int stream, const struct gov_xcall_hdr *h, const void *body);

/* Receives one frame into *h and body (cap bytes), waiting at most
 * timeout_ms (-1: forever). Returns 1, 0 at end of file, or -errno
 * (-ETIMEDOUT, -EPROTO with the bad field named in why). */
int gov_xcall_recv(int fd, int stream, struct gov_xcall_hdr *h, void *body, size_t cap,
		   int timeout_ms, char *why, size_t whylen);

/* What comes back of a call whose type string is types and whose argument
 * words are val: a struct return's bytes, then the out-buffers. cap[i] is
 * the capacity of parameter i if it is an `o` (the value of the next `z`
 * parameter), else 0. Returns the RESULT body's size (the struct and each
 * out-buffer padded to 8), or -1 if the type string does not parse, an `o`
 * has no `z` after it or the sum exceeds GOV_XCALL_BODY_MAX. */
long gov_xcall_outbufs(const char *types, const uint64_t *val, uint32_t cap[GOV_MAX_ARGS]);
/* The same from a type string already parsed (gov/typestr.h). */
struct gov_typestr;
long gov_xcall_outbufs_ts(const struct gov_typestr *ts, const uint64_t *val,
			  uint32_t cap[GOV_MAX_ARGS]);

/* Mailboxes (gov/xcall.h). box_map checks the memfd's size and maps it. */
struct gov_xcall_box *gov_xcall_box_map(int memfd);
/* The same for a serving process's mailbox and probe. */
struct gov_xcall_serve *gov_xcall_serve_map(int memfd);
void gov_xcall_box_send(struct gov_xcall_mailbox *mb, const struct gov_xcall_hdr *h,
			const void *body);
/* The frame already written in mb->data (len bytes) is sent: seq bumped,
 * the reader woken if it sleeps. */
void gov_xcall_box_post(struct gov_xcall_mailbox *mb, uint32_t len);
/* Waits for the frame after *seen (gov_xcall_box_recv's wait, below,
 * alone): returns 1 when it came (*seen updated; the frame is in mb), 0,
 * or -ETIMEDOUT as gov_xcall_box_recv. */
int gov_xcall_box_wait(struct gov_xcall_mailbox *mb, uint32_t *seen, int fd, long spin_ns,
		       int slice_ms, int timeout_ms);
/* Waits for the frame after *seen: spins spin_ns (yielding after 2 us, or
 * at once and after each look when the writer last posted from our CPU),
 * then sleeps on the sequence word in slices of slice_ms, looking at the
 * socket fd (the other side's end of file means it is gone) after each
 * slice that ended with no frame (not before the first: a departed peer is
 * noticed one slice late, and a call pays no system call for it).
 * fd < 0: no socket to look at; 0 comes back after each slice with no frame.
 * body NULL: the body stays in the mailbox (read it there).
 * Returns 1 with the frame checked, 0 when fd says the other side is gone,
 * -ETIMEDOUT after timeout_ms (-1: never), -EPROTO with why. */
int gov_xcall_box_recv(struct gov_xcall_mailbox *mb, uint32_t *seen, int fd, long spin_ns,
		       int slice_ms, int timeout_ms, struct gov_xcall_hdr *h, void *body,
		       size_t cap, char *why, size_t whylen);
/* Direct boxes' frames (struct gov_xcall_dhdr, gov/xcall.h). dframe_get
 * reads the frame in mb once gov_xcall_box_wait said it came: the header
 * into *h, checked, and the body into body (GOV_XCALL_BODY_MAX bytes;
 * NULL: it stays in the mailbox). Returns 1, or -EPROTO with the bad field
 * in why. dframe_send writes a frame and posts it. */
int gov_xcall_dframe_get(const struct gov_xcall_mailbox *mb, struct gov_xcall_dhdr *h,
			 void *body, char *why, size_t whylen);
void gov_xcall_dframe_send(struct gov_xcall_mailbox *mb, const struct gov_xcall_dhdr *h,
			   const void *body);
/* 1 if the other end of a socket has closed it (or it broke). */
int gov_xcall_peer_gone(int fd);

/* One packet (or, on a stream, len bytes) with fd passed beside it
 * (SCM_RIGHTS). Returns 0 or -errno. */
int gov_fd_send(int sock, const void *buf, size_t len, int fd);
/* Receives one packet into buf (cap bytes) and the fd passed with it, if
 * any (*fd = -1 if none; close-on-exec), waiting at most timeout_ms (-1:
 * forever). Returns the bytes received, 0 at end of file, or -errno. */
long gov_fd_recv(int sock, void *buf, size_t cap, int timeout_ms, int *fd);

/* Direct grants (gov/xcall.h). direct_map checks the memfd's size, magic
 * and version and maps it; NULL if it is not one (errno EINVAL) or
 * cannot be mapped (mmap's errno). */
struct gov_xcall_direct *gov_xcall_direct_map(int memfd);
/* Sets revoked and waits up to timeout_ms for every box's call to end
 * (owner back to 0, or DBOX_LOST). Returns the boxes still busy. */
unsigned gov_xcall_direct_revoke(struct gov_xcall_direct *d, int timeout_ms);

/* The protocol named word, or -1; and back. */
int gov_xcall_proto_from_word(const char *word);
const char *gov_xcall_proto_word(int proto);

#endif
