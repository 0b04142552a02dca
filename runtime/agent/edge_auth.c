/* runtime/agent/edge_auth.c - authentication of tcp links between agents.
 *
 * Agents on different machines share a secret: a key file given to each
 * with --edge-key FILE (the key itself never goes in a rule or the store).
 * Before HELLO, on every tcp link, both sides prove they hold it, each to
 * the other, by challenge and response with HMAC-SHA256 (OpenSSL):
 *
 *   callee -> caller  CHALLENGE  magic "GOVA", version, has_key, nonce_s[32]
 *   caller -> callee  ANSWER     magic, version, has_key, nonce_c[32],
 *                                HMAC(key, "govx-caller" nonce_s nonce_c)
 *   callee -> caller  VERDICT    magic, version, status, HMAC(key,
 *                                "govx-callee" nonce_c nonce_s)
 *
 * Fresh random nonces on both sides make an answer useless on another
 * link. A side with a key refuses a side without one; two sides without a
 * key link unauthenticated, as before keys existed (docs/xcall.md says why
 * that is only for networks that agents alone can reach). It is not the
 * link itself (edge_link.c) nor encryption: frames after it travel in the
 * clear, and the check is made once, when the link is set up. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "agent.h"
#include "edge.h"

#define AUTH_MAGIC 0x41564f47u /* "GOVA" */
#define AUTH_VERSION 1
#define NONCE 32
#define MAC 32
#define KEY_MIN 16
#define KEY_MAX 4096
#define AUTH_TIMEOUT_MS 2000

struct auth_msg {
	uint32_t magic;
	uint16_t version;
	uint8_t flag;          /* CHALLENGE, ANSWER: has a key; VERDICT: 0 ok, 1 refused */
	uint8_t pad;
	uint8_t nonce[NONCE];  /* CHALLENGE, ANSWER */
	uint8_t mac[MAC];      /* ANSWER, VERDICT */
};

static unsigned char key[KEY_MAX];
static size_t key_len;

int edge_auth_load(const char *path, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, whylen, "%s: cannot read the edge key: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ssize_t n = (st.st_mode & 077) ? -2 : read(fd, key, sizeof key);
	char extra;
	if (n >= 0 && n == (ssize_t)sizeof key && read(fd, &extra, 1) == 1)
		n = -3;
	close(fd);
	if (n == -2)
		snprintf(why, whylen, "%s: the edge key may be read by others (mode %03o): chmod 600 it",
			 path, (unsigned)(st.st_mode & 0777));
	else if (n == -3 || (n >= 0 && n < KEY_MIN))
		snprintf(why, whylen, "%s: an edge key is %d to %d bytes", path, KEY_MIN, KEY_MAX);
	else if (n < 0)
		snprintf(why, whylen, "%s: cannot read the edge key: %s", path, strerror(errno));
	if (n < KEY_MIN) {
		memset(key, 0, sizeof key);
		return -1;
	}
	key_len = (size_t)n;
	return 0;
}

/* Reads or writes exactly one message within AUTH_TIMEOUT_MS; 0 or -1. */
static int io_msg(int fd, struct auth_msg *m, int out)
{
	size_t done = 0;
	while (done < sizeof *m) {
		struct pollfd p = { fd, out ? POLLOUT : POLLIN, 0 };
		if (poll(&p, 1, AUTH_TIMEOUT_MS) <= 0)
			return -1;
		ssize_t n = out ? send(fd, (char *)m + done, sizeof *m - done, MSG_NOSIGNAL)
				: recv(fd, (char *)m + done, sizeof *m - done, 0);
		if (n <= 0 && !(n < 0 && errno == EINTR))
			return -1;
		if (n > 0)
			done += (size_t)n;
	}
	return 0;
}

static void mac_of(const char *label, const uint8_t *first, const uint8_t *second, uint8_t *mac)
{
	uint8_t in[16 + 2 * NONCE];
	size_t l = strlen(label);
	memcpy(in, label, l);
	memcpy(in + l, first, NONCE);
	memcpy(in + l + NONCE, second, NONCE);
	unsigned int len = MAC;
	HMAC(EVP_sha256(), key, (int)key_len, in, l + 2 * NONCE, mac, &len);
}

static void msg_init(struct auth_msg *m, uint8_t flag)
{
	memset(m, 0, sizeof *m);
	m->magic = AUTH_MAGIC;
	m->version = AUTH_VERSION;
	m->flag = flag;
}

static int msg_ok(const struct auth_msg *m)
{
	return m->magic == AUTH_MAGIC && m->version == AUTH_VERSION && m->flag <= 1;
}

int edge_auth_accept(int fd, char *why, size_t whylen)
{
	struct auth_msg ch, an, v;
	msg_init(&ch, key_len > 0);
	if (getrandom(ch.nonce, NONCE, 0) != NONCE || io_msg(fd, &ch, 1) < 0) {
		snprintf(why, whylen, "tcp authentication: cannot send the challenge");
		return -1;
	}
	if (io_msg(fd, &an, 0) < 0) {
		snprintf(why, whylen, "tcp authentication: no answer to the challenge in %d ms",
			 AUTH_TIMEOUT_MS);
		return -1;
	}
	const char *bad = NULL;
	if (!msg_ok(&an))
		bad = "the answer to the challenge is not one (a stranger, or an agent of another version)";
	else if (key_len && !an.flag)
		bad = "the connecting agent has no edge key (--edge-key)";
	else if (!key_len && an.flag)
		bad = "the connecting agent has an edge key and this agent none";
	msg_init(&v, 0);
	if (!bad && key_len) {
		uint8_t want[MAC];
		mac_of("govx-caller", ch.nonce, an.nonce, want);
		if (CRYPTO_memcmp(want, an.mac, MAC) != 0)
			bad = "the connecting agent's edge key is not this agent's (wrong key)";
		else
			mac_of("govx-callee", an.nonce, ch.nonce, v.mac);
	}
	if (bad) {
		snprintf(why, whylen, "tcp authentication: %s", bad);
		v.flag = 1;
		memset(v.mac, 0, MAC);
	}
	if (io_msg(fd, &v, 1) < 0 && !bad) {
		snprintf(why, whylen, "tcp authentication: cannot send the verdict");
		return -1;
	}
	return bad ? -1 : 0;
}

int edge_auth_connect(int fd, const char *to, char *why, size_t whylen)
{
	struct auth_msg ch, an, v;
	if (io_msg(fd, &ch, 0) < 0 || !msg_ok(&ch)) {
		snprintf(why, whylen, "tcp authentication with the agent of %s: no challenge came", to);
		return -1;
	}
	/* the answer goes even when the keys do not match, so that the callee
	 * logs why it refuses */
	msg_init(&an, key_len > 0);
	if (getrandom(an.nonce, NONCE, 0) != NONCE) {
		snprintf(why, whylen, "tcp authentication: no random nonce");
		return -1;
	}
	if (key_len && ch.flag) /* a keyless callee gets no answer made with the key */
		mac_of("govx-caller", ch.nonce, an.nonce, an.mac);
	if (io_msg(fd, &an, 1) < 0 || io_msg(fd, &v, 0) < 0 || !msg_ok(&v)) {
		snprintf(why, whylen, "tcp authentication with the agent of %s: no verdict came", to);
		return -1;
	}
	if (ch.flag != (key_len > 0)) {
		snprintf(why, whylen, ch.flag ? "the agent of %s requires an edge key (--edge-key)"
					      : "the agent of %s has no edge key: an unauthenticated "
						"link is refused", to);
		return -1;
	}
	if (v.flag) {
		snprintf(why, whylen, "the agent of %s refused this agent's edge key (wrong key?)", to);
		return -1;
	}
	if (key_len) {
		uint8_t want[MAC];
		mac_of("govx-callee", an.nonce, ch.nonce, want);
		if (CRYPTO_memcmp(want, v.mac, MAC) != 0) {
			snprintf(why, whylen, "the agent of %s does not hold this agent's edge key", to);
			return -1;
		}
	}
	return 0;
}
