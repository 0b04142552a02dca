/* runtime/agent/edge_link.c - links between two agents, one per protocol:
 *
 *   unix      a stream socket to <run dir>/<callee>.edge; frames on it
 *   tcp       a TCP connection to the callee agent's --edge-tcp address
 *             (the protocol rule's address, else <run dir>/<callee>.tcp)
 *   msgqueue  two POSIX message queues the caller creates (requests,
 *             replies) and names in its HELLO; frames are cut into
 *             messages of the queue's size and joined again
 *   shm       a memfd the caller creates and passes over the unix socket
 *             (SCM_RIGHTS): two mailboxes, each one frame, a sequence word
 *             the reader spins on, then sleeps on as a futex
 *
 * msgqueue and shm links keep the unix socket that said HELLO open: its end
 * of file is how either side learns that the other agent is gone. A caller
 * has at most one call in flight on a link (edge.c gives each call a lane
 * of its own, a link), which is what lets a mailbox hold one frame. It is
 * not the routing of calls (edge.c) nor the frame codec (xcall_io.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"
#include "edge.h"
#include "../xcall_io.h"

#define MQ_MSG 8192   /* fs.mqueue.msgsize_max's default: any user may ask for it */
#define MQ_DEPTH 10   /* fs.mqueue.msg_max's default */
#define SLEEP_SLICE_MS 20

struct edge_link {
	int proto;
	int fd;              /* the stream (unix, tcp) or the HELLO socket (mq, shm) */
	int caller;          /* 1 on the caller's side */
	mqd_t mq_out, mq_in;
	struct gov_xcall_box *box;
	uint32_t seen;       /* shm: last sequence read from our inbox */
	unsigned char *chunk;
	uint8_t features;    /* caller's side: the WELCOME's GOV_XCALL_FEAT_* */
};

static long spin_ns = 50000;
static atomic_uint link_counter;

void edge_link_spin(long ns)
{
	spin_ns = ns;
}

int edge_link_proto(const struct edge_link *l)
{
	return l->proto;
}

unsigned edge_link_features(const struct edge_link *l)
{
	return l->features;
}

static struct edge_link *link_new(int proto, int fd, int caller)
{
	struct edge_link *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->proto = proto;
	l->fd = fd;
	l->caller = caller;
	l->mq_out = l->mq_in = (mqd_t)-1;
	return l;
}

void edge_link_close(struct edge_link *l)
{
	if (!l)
		return;
	if (l->mq_out != (mqd_t)-1)
		mq_close(l->mq_out);
	if (l->mq_in != (mqd_t)-1)
		mq_close(l->mq_in);
	if (l->box)
		munmap(l->box, sizeof *l->box);
	if (l->fd >= 0)
		close(l->fd);
	free(l->chunk);
	free(l);
}

/* ---- connecting ---- */

static int connect_unix(const char *to, char *why, size_t whylen)
{
	char path[PATH_MAX];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (gov_run_path(path, sizeof path, to, "edge") < 0 || strlen(path) >= sizeof sa.sun_path) {
		snprintf(why, whylen, "run directory path too long for a unix socket");
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		snprintf(why, whylen, "no agent of %s listens at %s: %s", to, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* HOST:PORT from the rule, else from the file the callee's agent wrote. */
static int connect_tcp(const char *to, const char *address, char *why, size_t whylen)
{
	char addr[128] = "", path[PATH_MAX];
	if (address && *address) {
		snprintf(addr, sizeof addr, "%s", address);
	} else if (gov_run_path(path, sizeof path, to, "tcp") == 0) {
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(addr, sizeof addr, f))
				addr[0] = 0;
			fclose(f);
			addr[strcspn(addr, "\n")] = 0;
		}
	}
	char *colon = strrchr(addr, ':');
	if (!colon) {
		snprintf(why, whylen, "no tcp address for %s (give the protocol rule an address, "
			 "or start its agent with --edge-tcp)", to);
		return -1;
	}
	*colon = 0;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int rc = getaddrinfo(addr, colon + 1, &hints, &res);
	if (rc) {
		snprintf(why, whylen, "tcp address %s:%s of %s: %s", addr, colon + 1, to, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			snprintf(why, whylen, "cannot reach the agent of %s at %s:%s: %s", to, addr,
				 colon + 1, strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd >= 0) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	return fd;
}

/* The shm link's memfd (and a direct grant's) travels beside one byte on
 * the stream that said HELLO. */
static int send_fd(int sock, int fd)
{
	return gov_fd_send(sock, "F", 1, fd) == 0 ? 0 : -1;
}

static int recv_fd(int sock, int timeout_ms)
{
	char byte;
	int fd;
	if (gov_fd_recv(sock, &byte, 1, timeout_ms, &fd) != 1 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int edge_link_gone(const struct edge_link *l)
{
	return gov_xcall_peer_gone(l->fd);
}

int edge_link_pass_fd(struct edge_link *l, int fd)
{
	return l->proto == GOV_PROTO_SHM ? send_fd(l->fd, fd) : -1;
}

int edge_link_take_fd(struct edge_link *l, int timeout_ms)
{
	return l->proto == GOV_PROTO_SHM ? recv_fd(l->fd, timeout_ms) : -1;
}

static int mq_pair(struct edge_link *l, const char *name_out, const char *name_in, int create)
{
	struct mq_attr at = { .mq_maxmsg = MQ_DEPTH, .mq_msgsize = MQ_MSG };
	int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
	l->mq_out = mq_open(name_out, flags, 0600, &at);
	l->mq_in = l->mq_out == (mqd_t)-1 ? (mqd_t)-1 : mq_open(name_in, flags, 0600, &at);
	l->chunk = malloc(MQ_MSG);
	return l->mq_in == (mqd_t)-1 || !l->chunk ? -1 : 0;
}

struct edge_link *edge_link_open(struct agent *a, const char *to, int proto,
				 const char *address, int timeout_ms, uint64_t *callee_epoch,
				 char *why, size_t whylen)
{
	int fd = proto == GOV_PROTO_TCP ? connect_tcp(to, address, why, whylen)
					: connect_unix(to, why, whylen);
	if (fd < 0)
		return NULL;
	if (proto == GOV_PROTO_TCP && edge_auth_connect(fd, to, why, whylen) < 0) {
		close(fd);
		return NULL;
	}
	struct edge_link *l = link_new(proto, fd, 1);
	if (!l) {
		close(fd);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	struct gov_xcall_hdr h;
	gov_xcall_init(&h, GOV_XCALL_HELLO);
	h.caller_epoch = a->epoch;
	h.proto = (uint8_t)proto;
	snprintf(h.name, sizeof h.name, "%s", a->cfg.resource);
	char qn[2][40];
	int memfd = -1;
	if (proto == GOV_PROTO_MSGQUEUE) {
		unsigned n = atomic_fetch_add(&link_counter, 1);
		for (int i = 0; i < 2; i++)
			snprintf(qn[i], sizeof qn[i], "/gov.%d.%u.%c", (int)getpid(), n, "qr"[i]);
		if (mq_pair(l, qn[0], qn[1], 1) < 0) {
			snprintf(why, whylen, "cannot create message queues %s, %s: %s", qn[0], qn[1],
				 strerror(errno));
			goto fail;
		}
		snprintf(h.text, sizeof h.text, "%s %s", qn[0], qn[1]);
	} else if (proto == GOV_PROTO_SHM) {
		memfd = memfd_create("gov-edge", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, sizeof(struct gov_xcall_box)) < 0 ||
		    !(l->box = gov_xcall_box_map(memfd))) {
			snprintf(why, whylen, "cannot create the shared memory of an shm link: %s",
				 strerror(errno));
			goto fail;
		}
	}
	int r = gov_xcall_send(fd, 1, &h, NULL);
	if (!r && memfd >= 0 && send_fd(fd, memfd) < 0)
		r = -errno;
	if (r < 0) {
		snprintf(why, whylen, "cannot say hello to the agent of %s: %s", to, strerror(-r));
		goto fail;
	}
	r = gov_xcall_recv(fd, 1, &h, NULL, 0, timeout_ms, why, whylen);
	if (r <= 0 || h.type != GOV_XCALL_WELCOME) {
		if (r == 0 || r == -ETIMEDOUT || (r > 0 && h.type != GOV_XCALL_WELCOME))
			snprintf(why, whylen, "the agent of %s did not welcome this link", to);
		else if (r != -EPROTO)
			snprintf(why, whylen, "the agent of %s: %s", to, strerror(-r));
		goto fail;
	}
	if (h.status) {
		snprintf(why, whylen, "the agent of %s refused the link: %s", to, h.text);
		goto fail;
	}
	*callee_epoch = h.req_id;
	l->features = h.features;
	if (proto == GOV_PROTO_MSGQUEUE)
		for (int i = 0; i < 2; i++)
			mq_unlink(qn[i]); /* both ends hold them open now */
	if (memfd >= 0)
		close(memfd);
	return l;
fail:
	if (proto == GOV_PROTO_MSGQUEUE)
		for (int i = 0; i < 2; i++)
			mq_unlink(qn[i]);
	if (memfd >= 0)
		close(memfd);
	edge_link_close(l);
	return NULL;
}

static void welcome(struct agent *a, int fd, int status, const char *text)
{
	struct gov_xcall_hdr w;
	gov_xcall_init(&w, GOV_XCALL_WELCOME);
	w.status = (uint8_t)(status ? GOV_XCALL_NOT_RUN : GOV_XCALL_OK);
	w.err = status;
	w.req_id = a->epoch;
	w.features = status ? 0 : GOV_XCALL_FEAT_DEFER;
	snprintf(w.name, sizeof w.name, "%s", a->cfg.resource);
	snprintf(w.text, sizeof w.text, "%s", text ? text : "");
	gov_xcall_send(fd, 1, &w, NULL);
}

struct edge_link *edge_link_accept(struct agent *a, int fd, int is_tcp, struct gov_xcall_hdr *h,
				   char *why, size_t whylen)
{
	if (is_tcp && edge_auth_accept(fd, why, whylen) < 0)
		return NULL; /* a tcp link proves its key first (edge_auth.c) */
	int r = gov_xcall_recv(fd, 1, h, NULL, 0, 2000, why, whylen);
	if (r <= 0 || h->type != GOV_XCALL_HELLO) {
		if (r >= 0 || r != -EPROTO)
			snprintf(why, whylen, "no hello from the connecting agent");
		return NULL;
	}
	if (is_tcp != (h->proto == GOV_PROTO_TCP)) {
		snprintf(why, whylen, "a %s link cannot come in on the %s listener",
			 gov_xcall_proto_word(h->proto), is_tcp ? "tcp" : "unix");
		welcome(a, fd, EPROTO, why);
		return NULL;
	}
	struct edge_link *l = link_new(h->proto, fd, 0);
	if (!l) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	if (h->proto == GOV_PROTO_MSGQUEUE) {
		char q[2][48];
		if (sscanf(h->text, "%47s %47s", q[0], q[1]) != 2 || q[0][0] != '/' || q[1][0] != '/' ||
		    mq_pair(l, q[1], q[0], 0) < 0) {
			snprintf(why, whylen, "cannot open the message queues named in the hello (%s): %s",
				 h->text, strerror(errno));
			goto refuse;
		}
	} else if (h->proto == GOV_PROTO_SHM) {
		int mfd = recv_fd(fd, 2000);
		l->box = mfd < 0 ? NULL : gov_xcall_box_map(mfd);
		if (mfd >= 0)
			close(mfd);
		if (!l->box) {
			snprintf(why, whylen, "the shm link's memory is missing or of the wrong size");
			goto refuse;
		}
		l->seen = l->box->mb[0].seq;
	}
	welcome(a, fd, 0, NULL);
	return l;
refuse:
	welcome(a, fd, EPROTO, why);
	l->fd = -1; /* the caller of accept closes fd */
	edge_link_close(l);
	return NULL;
}

/* ---- frames on a link ---- */

static struct timespec deadline_ts(int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long ms = timeout_ms < 0 ? 3600000L : timeout_ms;
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static int mq_send_frame(struct edge_link *l, const struct gov_xcall_hdr *h, const void *body,
			 int timeout_ms)
{
	struct timespec ts = deadline_ts(timeout_ms);
	size_t total = sizeof *h + h->body_len, off = 0;
	while (off < total) {
		size_t n = total - off < MQ_MSG ? total - off : MQ_MSG;
		for (size_t k = 0; k < n; k++) {
			size_t at = off + k;
			l->chunk[k] = at < sizeof *h ? ((const unsigned char *)h)[at]
						     : ((const unsigned char *)body)[at - sizeof *h];
		}
		if (mq_timedsend(l->mq_out, (const char *)l->chunk, n, 0, &ts) < 0)
			return errno == EINTR ? -EINTR : -errno;
		off += n;
	}
	return 0;
}

static int mq_recv_frame(struct edge_link *l, struct gov_xcall_hdr *h, void *body, size_t cap,
			 int timeout_ms, char *why, size_t whylen)
{
	size_t got = 0, total = sizeof *h;
	uint64_t end = gov_now_ns() + (uint64_t)(timeout_ms < 0 ? 3600000L : timeout_ms) * 1000000u;
	while (got < total) {
		struct pollfd p[2] = { { .fd = (int)l->mq_in, .events = POLLIN },
				       { .fd = l->fd, .events = POLLIN } };
		uint64_t now = gov_now_ns();
		if (now >= end)
			return -ETIMEDOUT;
		int r = poll(p, 2, (int)((end - now) / 1000000u) + 1);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		if (!(p[0].revents & POLLIN)) {
			if (gov_xcall_peer_gone(l->fd))
				return 0;
			continue;
		}
		struct timespec ts = deadline_ts(10);
		ssize_t n = mq_timedreceive(l->mq_in, (char *)l->chunk, MQ_MSG, NULL, &ts);
		if (n < 0) {
			if (errno == ETIMEDOUT || errno == EINTR)
				continue;
			return -errno;
		}
		for (ssize_t k = 0; k < n; k++, got++) {
			if (got < sizeof *h) {
				((unsigned char *)h)[got] = l->chunk[k];
				if (got + 1 == sizeof *h) {
					if (h->body_len > cap || h->body_len > GOV_XCALL_BODY_MAX) {
						snprintf(why, whylen, "xcall frame field body_len is wrong");
						return -EPROTO;
					}
					total += h->body_len;
				}
			} else if (got < total) {
				((unsigned char *)body)[got - sizeof *h] = l->chunk[k];
			}
		}
	}
	const char *f = gov_xcall_check(h, total);
	if (f) {
		snprintf(why, whylen, "xcall frame field %s is wrong", f);
		return -EPROTO;
	}
	return 1;
}

int edge_link_send(struct edge_link *l, const struct gov_xcall_hdr *h, const void *body,
		   int timeout_ms)
{
	switch (l->proto) {
	case GOV_PROTO_MSGQUEUE:
		return mq_send_frame(l, h, body, timeout_ms);
	case GOV_PROTO_SHM:
		/* a peer that went away is noticed by the wait for the answer */
		gov_xcall_box_send(&l->box->mb[l->caller ? 0 : 1], h, body);
		return 0;
	default:
		return gov_xcall_send(l->fd, 1, h, body);
	}
}

int edge_link_recv(struct edge_link *l, struct gov_xcall_hdr *h, void *body, size_t cap,
		   int timeout_ms, char *why, size_t whylen)
{
	switch (l->proto) {
	case GOV_PROTO_MSGQUEUE:
		return mq_recv_frame(l, h, body, cap, timeout_ms, why, whylen);
	case GOV_PROTO_SHM:
		return gov_xcall_box_recv(&l->box->mb[l->caller ? 1 : 0], &l->seen, l->fd, spin_ns,
					  SLEEP_SLICE_MS, timeout_ms, h, body, cap, why, whylen);
	default:
		return gov_xcall_recv(l->fd, 1, h, body, cap, timeout_ms, why, whylen);
	}
}
