/* examples/paper/driver.c - net-driver: serves nd_send and nd_recv by
 * framing for the NIC (a length byte in front) and calling nic_tx/nic_rx. */
#include <string.h>
#include <unistd.h>
#include "paper.h"

long nd_send(const void *frame, size_t len)
{
	unsigned char wire[256];
	if (len > 250)
		return -1;
	wire[0] = (unsigned char)len;
	memcpy(wire + 1, frame, len);
	return nic_tx(wire, len + 1) == (long)len + 1 ? (long)len : -1;
}

long nd_recv(void *frame, size_t cap)
{
	unsigned char wire[256];
	long n = nic_rx(wire, sizeof wire);
	if (n < 1 || wire[0] > n - 1)
		return -1;
	size_t len = wire[0] < cap ? wire[0] : cap;
	memcpy(frame, wire + 1, len);
	return (long)len;
}

int main(int argc, char **argv)
{
	paper_serve(argc > 1 ? argv[1] : NULL);
	for (;;)
		pause();
}
