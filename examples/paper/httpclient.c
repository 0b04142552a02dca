/* examples/paper/httpclient.c - the application: fetches N URLs through
 * net-service (svc_fetch, a governed call the rules forward) and prints
 * every tenth answer, or the error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "paper.h"

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10, gap_ms = argc > 2 ? atoi(argv[2]) : 0;
	int good = 0, bad = 0;
	for (int i = 0; i < n; i++) {
		char url[64], page[256] = "";
		snprintf(url, sizeof url, "http://example.org/page/%d", i);
		errno = 0;
		long r = svc_fetch(url, page, sizeof page - 1);
		if (r > 0)
			good++;
		else
			bad++;
		if (i % 10 == 0 || i == n - 1)
			printf("httpclient: GET %s -> %s\n", url, r > 0 ? page : strerror(errno));
		if (gap_ms)
			usleep((useconds_t)gap_ms * 1000);
	}
	printf("httpclient: %d answered, %d failed\n", good, bad);
	return 0;
}
