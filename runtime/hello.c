/* runtime/hello.c - the process's side of the agent handshake
 * (docs/wire.md): on a connected socket, HELLO out, WELCOME back with the
 * region's memfd, the region mapped and checked (gov_region_check). Shared
 * by libgovrt (channel.c) and govrt-static (runtime/static/, compiled
 * freestanding over its shim), so both speak it one way. Not here:
 * finding the socket, retrying, or what is done with the connection. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include "hello.h"
#include "gov/region.h"

#define HANDSHAKE_TIMEOUT_S 2

static int recv_welcome(int fd, struct gov_msg *m, int *region_fd, char *why, size_t whylen)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { m, sizeof *m };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cb.buf, .msg_controllen = sizeof cb.buf };
	*region_fd = -1;
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(region_fd, CMSG_DATA(c), sizeof(int));
	const char *bad = gov_msg_check(m, (size_t)n);
	if (!bad && m->type != GOV_MSG_WELCOME)
		bad = "type";
	if (bad) {
		snprintf(why, whylen, "agent's welcome message refused: field %s is wrong", bad);
		return -EPROTO;
	}
	return 0;
}

/* The region of the WELCOME in m, mapped and checked, or NULL. */
static void *map_region(int region_fd, const struct gov_msg *m, const char *resource,
			int *err, char *why, size_t whylen)
{
	struct stat st;
	if (region_fd < 0 || fstat(region_fd, &st) < 0 || (uint64_t)st.st_size != m->size) {
		snprintf(why, whylen, "agent for %s sent no usable region", resource);
		*err = -EPROTO;
		return NULL;
	}
	void *p = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, region_fd, 0);
	if (p == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	const char *bad = gov_region_check(p, m->size);
	if (bad) {
		const struct gov_region_hdr *h = p;
		snprintf(why, whylen, "agent for %s sent a region this govrt cannot use: field %s "
			 "(version %u, this govrt speaks %u)", resource, bad, h->version,
			 GOV_REGION_VERSION);
		munmap(p, m->size);
		*err = -EPROTO;
		return NULL;
	}
	return p;
}

struct gov_region_hdr *gov_hello(int fd, const char *resource, uint32_t flags, struct gov_msg *m,
				 int *err, char *why, size_t whylen)
{
	why[0] = 0;
	*err = 0;
	struct timeval tv = { HANDSHAKE_TIMEOUT_S, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	*m = (struct gov_msg){ .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			       .type = GOV_MSG_HELLO, .role = GOV_ROLE_PROCESS,
			       .pid = (int32_t)getpid(), .flags = flags };
	snprintf(m->name, sizeof m->name, "%s", resource);
	if (send(fd, m, sizeof *m, MSG_NOSIGNAL) != (ssize_t)sizeof *m) {
		*err = -errno;
		return NULL;
	}
	int region_fd = -1;
	if ((*err = recv_welcome(fd, m, &region_fd, why, whylen)) < 0) {
		if (region_fd >= 0)
			close(region_fd);
		return NULL;
	}
	if (m->status != 0) {
		*err = m->status > 0 ? -m->status : -EPROTO;
		snprintf(why, whylen, "agent for %s refused this process: %s", resource, m->text);
		if (region_fd >= 0)
			close(region_fd);
		return NULL;
	}
	struct gov_region_hdr *r = map_region(region_fd, m, resource, err, why, whylen);
	if (region_fd >= 0)
		close(region_fd);
	if (r) {
		tv.tv_sec = 0;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	}
	return r;
}
