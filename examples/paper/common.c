/* examples/paper/common.c - what the demo's programs share: serving the
 * resource's exports (govrt_serve_start) and the local stand-ins of the
 * next layer's functions. A stand-in runs only when no rule forwards the
 * call (it says so and fails), which makes an unforwarded call visible. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "paper.h"

void paper_serve(const char *exports)
{
	char err[256];
	if (govrt_serve_start(exports, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	for (int i = 0; i < 500 && !govrt_serving(); i++)
		usleep(10000);
}

#define STANDIN(decl, name)                                                   \
	__attribute__((weak)) decl                                            \
	{                                                                     \
		fprintf(stderr, "%s ran locally: no rule forwards it\n", name); \
		errno = ENOSYS;                                               \
		return -1;                                                    \
	}
STANDIN(long svc_fetch(const char *u, void *o, size_t c), "svc_fetch")
STANDIN(long nd_send(const void *f, size_t n), "nd_send")
STANDIN(long nd_recv(void *f, size_t c), "nd_recv")
STANDIN(long nic_tx(const void *f, size_t n), "nic_tx")
STANDIN(long nic_rx(void *f, size_t c), "nic_rx")
