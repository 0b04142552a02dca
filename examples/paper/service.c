/* examples/paper/service.c - net-service: serves svc_fetch, which turns a
 * URL into a request frame, sends it through the net driver (nd_send) and
 * reads the response frame back (nd_recv). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "paper.h"

long svc_fetch(const char *url, void *out, size_t cap)
{
	char frame[256];
	int n = snprintf(frame, sizeof frame, "GET %s", url);
	if (nd_send(frame, (size_t)n) != n)
		return -1;
	long got = nd_recv(out, cap);
	if (got >= 0 && (size_t)got < cap)
		((char *)out)[got] = 0;
	return got;
}

int main(int argc, char **argv)
{
	paper_serve(argc > 1 ? argv[1] : NULL);
	for (;;)
		pause();
}
