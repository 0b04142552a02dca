/* examples/paper/nic.c - the simulated NIC (hardware): a frame sent is
 * answered by the "network" at once; nic_rx hands out that answer. One
 * frame in flight, as the driver uses it. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "paper.h"

static unsigned char rx[256];
static long rx_len;
static unsigned long frames;

long nic_tx(const void *wire, size_t len)
{
	const unsigned char *w = wire;
	if (len < 1 || w[0] != len - 1)
		return -1;
	char body[256];
	int n = snprintf(body, sizeof body, "200 OK (%.*s) frame %lu", (int)(len - 1) > 60 ? 60 : (int)(len - 1),
			 (const char *)w + 1 + 4, ++frames);
	if (n > 250)
		n = 250;
	rx[0] = (unsigned char)n;
	memcpy(rx + 1, body, (size_t)n);
	rx_len = n + 1;
	return (long)len;
}

long nic_rx(void *wire, size_t cap)
{
	long n = rx_len <= (long)cap ? rx_len : (long)cap;
	memcpy(wire, rx, (size_t)n);
	rx_len = 0;
	return n;
}

int main(int argc, char **argv)
{
	paper_serve(argc > 1 ? argv[1] : NULL);
	for (;;)
		pause();
}
