/* examples/paper/paper.h - the exported functions of the paper's example
 * system, one resource per layer:
 *
 *   httpclient (application) -> net-service (service) -> net-driver (driver)
 *   -> nic (hardware, simulated)
 *
 * Each program is built with the GCC plugin told to govern calls to the
 * next layer's functions (targets=svc_*, nd_*, nic_*); the rules forward
 * them, so each call runs in the process of the resource that exports it.
 * The *.exports files list the same functions with their type strings. */
#ifndef PAPER_H
#define PAPER_H
#include <stddef.h>

/* net-service: fetch a URL; the response is written into out */
long svc_fetch(const char *url, void *out, size_t cap);
/* net-driver: send a frame; receive the next one */
long nd_send(const void *frame, size_t len);
long nd_recv(void *frame, size_t cap);
/* nic: put a frame on the wire; take one off */
long nic_tx(const void *frame, size_t len);
long nic_rx(void *frame, size_t cap);

/* Every program serves its exports (if any) and then does its work. */
void paper_serve(const char *exports);
#endif
