/* runtime/hello.h - the process's side of the agent handshake (docs/wire.md,
 * "Messages on the socket"), shared by libgovrt and govrt-static so that
 * both connect the same way: internal to govrt, like internal.h (its two
 * builds), not an API. Not here: the message layout (gov/wire.h) or the
 * region's (gov/region.h). */
#ifndef GOV_RUNTIME_HELLO_H
#define GOV_RUNTIME_HELLO_H

#include <stddef.h>
#include "gov/wire.h"

struct gov_region_hdr;

/* On fd, a SOCK_SEQPACKET socket connected to the agent of `resource`:
 * says HELLO (role process, this pid), reads WELCOME and maps its region
 * (checked with gov_region_check). Returns the region, its size in
 * m->size and the agent's name and epoch in *m; or NULL with *err = -errno
 * and, when the agent answered something unusable, a line for a warning in
 * why (else why is ""). fd's receive timeout is 2 s during the handshake
 * and none after it. flags: GOV_HELLO_* (what this process can take). */
struct gov_region_hdr *gov_hello(int fd, const char *resource, uint32_t flags, struct gov_msg *m,
				 int *err, char *why, size_t whylen);

#endif
