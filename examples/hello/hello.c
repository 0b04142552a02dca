/* examples/hello/hello.c - a small governed program for the demo: a
 * "billing" resource that sends invoices and asks the kernel who its parent
 * is, through sites declared with gov/govrt.h. It reports, every 50 rounds,
 * how many invoices went out and how many were refused - the refusals come
 * from rules its agent publishes while it runs. */
#define GOV_RESOURCE_NAME "billing"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <gov/govrt.h>

__attribute__((noinline)) long send_invoice(const void *invoice, size_t len)
{
	return (long)len; /* a real one would talk to the bank */
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 300;
	long sent = 0, refused = 0;
	char invoice[64];
	for (int i = 1; i <= rounds; i++) {
		int n = snprintf(invoice, sizeof invoice, "invoice %d: 42 EUR", i);
		if (GOV_CALL("lbz", send_invoice, (const void *)invoice, (size_t)n) < 0)
			refused++;
		else
			sent++;
		long ppid = GOV_SYSCALL(SYS_getppid);
		if (i % 50 == 0) {
			struct govrt_stats st;
			govrt_stats(&st);
			printf("hello: round %3d  sent %3ld  refused %3ld (%s)  getppid=%ld  agent %s, rules rev %llu\n",
			       i, sent, refused, refused ? strerror(EACCES) : "-", ppid,
			       govrt_connected() ? "connected" : "away", (unsigned long long)st.table_rev);
			fflush(stdout);
		}
		usleep(10000);
	}
	return 0;
}
