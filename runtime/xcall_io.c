/* runtime/xcall_io.c - cross-resource frames on a socket (gov/xcall.h) and
 * the out-buffer layout of a call. One place reads and writes these frames
 * for govrt and govagent alike; every received header is checked by
 * gov_xcall_check() before anything in it is used. It is not the codec of
 * the call inside a CALL body (runtime/wire.c) nor a protocol (agent/edge*.c). */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "gov/typestr.h"
#include "xcall_io.h"
#include "internal.h"

void gov_xcall_init(struct gov_xcall_hdr *h, int type)
{
	memset(h, 0, sizeof *h);
	h->magic = GOV_XCALL_MAGIC;
	h->version = GOV_XCALL_VERSION;
	h->type = (uint16_t)type;
}

int gov_xcall_send(int fd, int stream, const struct gov_xcall_hdr *h, const void *body)
{
	struct iovec iov[2] = { { (void *)h, sizeof *h }, { (void *)body, h->body_len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = h->body_len ? 2 : 1 };
	size_t left = sizeof *h + h->body_len;
	while (left) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		left -= (size_t)n;
		if (!stream || !left)
			return stream || !left ? 0 : -EMSGSIZE;
		/* a stream took part of it: step over what went */
		while (n > 0 && mh.msg_iovlen) {
			size_t take = (size_t)n < mh.msg_iov->iov_len ? (size_t)n : mh.msg_iov->iov_len;
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + take;
			mh.msg_iov->iov_len -= take;
			n -= (ssize_t)take;
			if (!mh.msg_iov->iov_len) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Exactly len bytes of a stream; 1, 0 at end of file before any, or -errno. */
static int read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	size_t got = 0;
	while (got < len) {
		int r = wait_readable(fd, timeout_ms);
		if (r < 0)
			return r;
		ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
		if (n == 0)
			return got ? -ECONNRESET : 0;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 1;
}

static int bad(char *why, size_t whylen, const char *field)
{
	if (why && whylen)
		snprintf(why, whylen, "xcall frame field %s is wrong", field);
	return -EPROTO;
}

int gov_xcall_recv(int fd, int stream, struct gov_xcall_hdr *h, void *body, size_t cap,
		   int timeout_ms, char *why, size_t whylen)
{
	if (stream) {
		int r = read_full(fd, h, sizeof *h, timeout_ms);
		if (r <= 0)
			return r;
		if (h->body_len > cap || h->body_len > GOV_XCALL_BODY_MAX)
			return bad(why, whylen, "body_len");
		if (h->body_len && (r = read_full(fd, body, h->body_len, timeout_ms)) <= 0)
			return r < 0 ? r : -ECONNRESET;
		const char *f = gov_xcall_check(h, sizeof *h + h->body_len);
		return f ? bad(why, whylen, f) : 1;
	}
	int r = wait_readable(fd, timeout_ms);
	if (r < 0)
		return r;
	struct iovec iov[2] = { { h, sizeof *h }, { body, cap } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;
	do
		n = recvmsg(fd, &mh, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	if (mh.msg_flags & MSG_TRUNC)
		return bad(why, whylen, "body_len");
	const char *f = gov_xcall_check(h, (size_t)n);
	return f ? bad(why, whylen, f) : 1;
}

long gov_xcall_outbufs(const char *types, const uint64_t *val, uint32_t cap[GOV_MAX_ARGS])
{
	struct gov_typestr ts;
	const char *why;
	size_t where;
	if (gov_typestr_parse(types, &ts, &why, &where) < 0) {
		for (int i = 0; i < GOV_MAX_ARGS; i++)
			cap[i] = 0;
		return -1;
	}
	return gov_xcall_outbufs_ts(&ts, val, cap);
}

long gov_xcall_outbufs_ts(const struct gov_typestr *t, const uint64_t *val,
			  uint32_t cap[GOV_MAX_ARGS])
{
	size_t total = 0;
	for (int i = 0; i < GOV_MAX_ARGS; i++)
		cap[i] = 0;
	const char *params = t->top + 1;
	if (t->top[0] == GOV_T_STRUCT)
		total = GOV_XCALL_PAD8(t->size[0]);
	for (int i = 0; params[i] && i < GOV_MAX_ARGS; i++) {
		if (params[i] != GOV_T_OUTBUF)
			continue;
		int j = i + 1;
		while (params[j] && params[j] != GOV_T_SIZE)
			j++;
		if (!params[j] || val[j] > GOV_XCALL_BODY_MAX)
			return -1;
		cap[i] = (uint32_t)val[j];
		total += GOV_XCALL_PAD8(cap[i]);
	}
	return total > GOV_XCALL_BODY_MAX ? -1 : (long)total;
}

/* memfd mapped if it is exactly size bytes; NULL with errno otherwise */
static void *map_sized(int memfd, size_t size)
{
	struct stat st;
	if (fstat(memfd, &st) < 0)
		return NULL;
	if ((size_t)st.st_size != size) {
		errno = EINVAL;
		return NULL;
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	return p == MAP_FAILED ? NULL : p;
}

struct gov_xcall_box *gov_xcall_box_map(int memfd)
{
	return map_sized(memfd, sizeof(struct gov_xcall_box));
}

struct gov_xcall_serve *gov_xcall_serve_map(int memfd)
{
	return map_sized(memfd, sizeof(struct gov_xcall_serve));
}

int gov_xcall_peer_gone(int fd)
{
	char b;
	ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

int gov_fd_send(int sock, const void *buf, size_t len, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof cbuf };
	memset(cbuf, 0, sizeof cbuf);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EMSGSIZE;
}

long gov_fd_recv(int sock, void *buf, size_t cap, int timeout_ms, int *fd)
{
	*fd = -1;
	int r = wait_readable(sock, timeout_ms);
	if (r < 0)
		return r;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { buf, cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof cbuf };
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof *fd);
	return n;
}

struct gov_xcall_direct *gov_xcall_direct_map(int memfd)
{
	struct gov_xcall_direct *d = map_sized(memfd, sizeof *d);
	if (!d)
		return NULL;
	if (d->magic != GOV_XCALL_DIRECT_MAGIC || d->version != GOV_XCALL_DIRECT_VERSION ||
	    !memchr(d->from, 0, sizeof d->from) || !memchr(d->to, 0, sizeof d->to)) {
		munmap(d, sizeof *d);
		errno = EINVAL;
		return NULL;
	}
	return d;
}

unsigned gov_xcall_direct_revoke(struct gov_xcall_direct *d, int timeout_ms)
{
	__atomic_store_n(&d->revoked, 1, __ATOMIC_SEQ_CST);
	uint64_t end = gov_now_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		unsigned busy = 0;
		for (int i = 0; i < GOV_XCALL_DIRECT_BOXES; i++) {
			uint32_t o = __atomic_load_n(&d->dbox[i].owner, __ATOMIC_SEQ_CST);
			busy += o != 0 && o != GOV_XCALL_DBOX_LOST;
		}
		if (!busy || gov_now_ns() >= end)
			return busy;
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
}

void gov_xcall_box_send(struct gov_xcall_mailbox *mb, const struct gov_xcall_hdr *h,
			const void *body)
{
	memcpy(mb->data, h, sizeof *h);
	if (h->body_len)
		memcpy(mb->data + sizeof *h, body, h->body_len);
	gov_xcall_box_post(mb, (uint32_t)(sizeof *h + h->body_len));
}

/* 1 + the CPU this thread runs on, 0 if unknown. glibc registers rseq,
 * so sched_getcpu is a load of the kernel-kept cpu_id, not a system call. */
static uint32_t cpu_tag(void)
{
	int c = sched_getcpu();
	return c < 0 ? 0 : (uint32_t)c + 1;
}

void gov_xcall_box_post(struct gov_xcall_mailbox *mb, uint32_t len)
{
	mb->len = len;
	/* on seq's line, which this post writes anyway: free for the reader */
	mb->cpu = cpu_tag();
	__atomic_store_n(&mb->seq, mb->seq + 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&mb->sleeping, __ATOMIC_SEQ_CST)) {
		__atomic_store_n(&mb->sleeping, 0, __ATOMIC_RELAXED);
		gov_futex_wake(&mb->seq, 1);
	}
}

#define PURE_SPIN_NS 2000

/* Whether the writer we wait for last posted from the CPU we run on. It
 * is a hint (either may have moved since): wrong, it costs a yield that
 * finds nobody to run, or the 2 us spin there was before. */
static int writer_here(const struct gov_xcall_mailbox *mb)
{
	uint32_t w = __atomic_load_n(&mb->cpu, __ATOMIC_RELAXED);
	return w && w == cpu_tag();
}

int gov_xcall_box_wait(struct gov_xcall_mailbox *mb, uint32_t *seen, int fd, long spin_ns,
		       int slice_ms, int timeout_ms)
{
	uint64_t start = gov_now_ns();
	uint64_t end = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * 1000000u;
	uint32_t last = *seen;
	int slept = 0, here = 0;
	for (unsigned i = 0; __atomic_load_n(&mb->seq, __ATOMIC_ACQUIRE) == last; i++) {
		if ((i & 63) && !here) {
			__builtin_ia32_pause();
			continue;
		}
		uint64_t now = gov_now_ns();
		if (now - start < (uint64_t)spin_ns) {
			/* the writer on our CPU cannot post while we spin: give
			 * it the CPU at once, and after each yield look again.
			 * Elsewhere, past a short pure spin, yield too: on a
			 * small machine someone else may need this CPU. */
			here = writer_here(mb);
			if (here || now - start > PURE_SPIN_NS)
				sched_yield();
			continue;
		}
		here = 0;
		if (now >= end)
			return -ETIMEDOUT;
		/* a system call per wait adds up over the four hops of a call:
		 * look at the socket only once a sleep has ended without a frame */
		if (slept && (fd < 0 || gov_xcall_peer_gone(fd)))
			return 0;
		slept = 1;
		__atomic_store_n(&mb->sleeping, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&mb->seq, __ATOMIC_SEQ_CST) == last) {
			uint64_t slice = (uint64_t)slice_ms * 1000000u;
			if (end - now < slice)
				slice = end - now;
			gov_futex_wait(&mb->seq, last, (long)slice);
		}
		__atomic_store_n(&mb->sleeping, 0, __ATOMIC_RELAXED);
	}
	*seen = __atomic_load_n(&mb->seq, __ATOMIC_ACQUIRE);
	return 1;
}

static int bad_field(const char *f, char *why, size_t whylen)
{
	if (why && whylen)
		snprintf(why, whylen, "xcall frame field %s is wrong", f);
	return -EPROTO;
}

int gov_xcall_box_recv(struct gov_xcall_mailbox *mb, uint32_t *seen, int fd, long spin_ns,
		       int slice_ms, int timeout_ms, struct gov_xcall_hdr *h, void *body,
		       size_t cap, char *why, size_t whylen)
{
	int r = gov_xcall_box_wait(mb, seen, fd, spin_ns, slice_ms, timeout_ms);
	if (r != 1)
		return r;
	uint32_t len = mb->len;
	const char *f = len < sizeof *h || len > GOV_XCALL_FRAME_MAX ? "length" : NULL;
	if (!f) {
		memcpy(h, mb->data, sizeof *h);
		f = gov_xcall_check(h, len);
		if (!f && h->body_len > cap)
			f = "body_len";
	}
	if (f)
		return bad_field(f, why, whylen);
	if (body)
		memcpy(body, mb->data + sizeof *h, h->body_len);
	return 1;
}

int gov_xcall_dframe_get(const struct gov_xcall_mailbox *mb, struct gov_xcall_dhdr *h,
			 void *body, char *why, size_t whylen)
{
	/* the other process may still write the box: each field is read once,
	 * checked, and only the checked copy is used */
	uint32_t len = __atomic_load_n(&mb->len, __ATOMIC_RELAXED);
	if (len < sizeof *h || len > GOV_XCALL_FRAME_MAX)
		return bad_field("length", why, whylen);
	memcpy(h, mb->data, sizeof *h);
	const char *f = gov_xcall_dhdr_check(h, len);
	if (f)
		return bad_field(f, why, whylen);
	if (body)
		memcpy(body, mb->data + sizeof *h, h->body_len);
	return 1;
}

void gov_xcall_dframe_send(struct gov_xcall_mailbox *mb, const struct gov_xcall_dhdr *h,
			   const void *body)
{
	memcpy(mb->data, h, sizeof *h);
	if (h->body_len)
		memcpy(mb->data + sizeof *h, body, h->body_len);
	gov_xcall_box_post(mb, (uint32_t)(sizeof *h + h->body_len));
}

static const char *const proto_words[] = {
#define GOV_XCALL_PROTO_WORD(name, code, word) [code] = word,
	GOV_XCALL_PROTOCOLS(GOV_XCALL_PROTO_WORD)
#undef GOV_XCALL_PROTO_WORD
};

int gov_xcall_proto_from_word(const char *word)
{
	for (int p = 0; p < GOV_PROTO_COUNT; p++)
		if (strcmp(word, proto_words[p]) == 0)
			return p;
	return -1;
}

const char *gov_xcall_proto_word(int proto)
{
	return proto >= 0 && proto < GOV_PROTO_COUNT ? proto_words[proto] : "?";
}
