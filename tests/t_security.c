/* tests/t_security.c - what the agent and govrt refuse: a process of
 * another uid, a malformed hello, a malformed call frame (through a real
 * slot, by a client speaking the protocol by hand), a shared region of
 * the wrong version (from a fake agent), and a NATIVE reply whose argument
 * words are not whole words or more than the call has (from a fake agent
 * that serves the slots: docs/wire.md). Each refusal names its reason and
 * leaves both sides working. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "gov/govrt.h"
#include "gov/wire.h"
#include "harness.h"
#include "internal.h"
#include "tap.h"

#define R "t-security"
#define NOBODY 65534

__attribute__((noinline)) long add(long a, long b) { return a + b; }
static long gadd(long a, long b) { return GOV_CALL("lll", add, a, b); }

static char stderr_path[512];

static void test_other_uid(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(10);
		int fd = harness_raw_connect(R), rfd;
		struct gov_msg w;
		if (fd < 0 || harness_raw_hello(fd, R, &w, &rfd) < 0)
			_exit(11);
		_exit(w.status == EACCES && rfd < 0 && strstr(w.text, "uid 65534 may not join") ? 0 : 12);
	}
	int st;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "a process of another uid is refused, told why, and given no region (%d)", WEXITSTATUS(st));
	char *log = agent_log_text(R);
	has_str(log, "event=refused", "the agent logs the refusal");
	has_str(log, "uid=65534", "naming the uid");
	free(log);

	/* the same through govrt: a governed program run as nobody */
	pid = fork();
	if (pid == 0) {
		int out = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
		dup2(out, 2);
		if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(10);
		char *args[] = { "/proc/self/exe", "as-nobody", NULL };
		execv(args[0], args);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "govrt run as nobody is not connected and runs natively");
	char *err = read_file(stderr_path);
	has_str(err, "refused this process: uid 65534 may not join resource t-security", "and says why, once");
	ok(err && strstr(err, "refused") && !strstr(strstr(err, "refused") + 1, "refused"),
	   "only once, not at every retry");
	free(err);
}

static void test_malformed_hello(void)
{
	int fd = harness_raw_connect(R);
	char junk[10] = "garbage!!";
	send(fd, junk, sizeof junk, 0);
	struct gov_msg w;
	ssize_t n = recv(fd, &w, sizeof w, 0);
	ok(n == sizeof w && w.status == EACCES && strstr(w.text, "malformed hello: field length"),
	   "a malformed hello is refused, naming the field");
	close(fd);
}

static void test_malformed_frame(void)
{
	int fd = harness_raw_connect(R), rfd;
	struct gov_msg w;
	ok(fd >= 0 && harness_raw_hello(fd, R, &w, &rfd) == 0 && w.status == 0 && rfd >= 0,
	   "a client speaking the protocol by hand is welcomed");
	struct gov_region_hdr *h = mmap(NULL, w.size, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
	ok(h != MAP_FAILED && gov_region_check(h, w.size) == NULL, "its region passes the checks");

	static const struct gov_site site = { .id = 5, .kind = GOV_SITE_CALL, .sysno = -1,
		.callee = "add", .types = "lll", .caller = "x", .file = "x.c", .line = 1 };
	struct gov_call call = { { 1, 2 }, 0 };
	char frame[1024], err[200];
	long len = gov_wire_encode_req(frame, sizeof frame, 1, &site, &call, err, sizeof err);
	struct gov_wire_rep rep;
	const char *text;
	ok(harness_post(h, frame, (uint32_t)len, 1, &rep, &text) == 0 && rep.status == GOV_WIRE_OK,
	   "a good frame is answered");

	((struct gov_wire_req *)frame)->nargs = 40;
	((struct gov_wire_req *)frame)->seq = 2;
	ok(harness_post(h, frame, (uint32_t)len, 2, &rep, &text) == 0 && rep.status == GOV_WIRE_MALFORMED,
	   "a frame with a bad field gets a MALFORMED reply");
	has_str(text, "field nargs", "naming the field");
	ok(harness_post(h, frame, 1u << 30, 3, &rep, &text) == 0 && rep.status == GOV_WIRE_MALFORMED,
	   "a slot length past the payload is refused");
	has_str(text, "slot field len", "naming the field");
	len = gov_wire_encode_req(frame, sizeof frame, 4, &site, &call, err, sizeof err);
	ok(harness_post(h, frame, (uint32_t)len, 4, &rep, &text) == 0 && rep.status == GOV_WIRE_OK,
	   "and the agent carries on answering good frames");
	char *log = agent_log_text(R);
	has_str(log, "event=malformed_frame", "the agent logs malformed frames");
	free(log);
	munmap(h, w.size);
	close(rfd);
	close(fd);
	is_long(gadd(2, 2), 4, "the governed program itself was never disturbed");
}

/* A fake agent's WELCOME: the region's size and epoch, its memfd attached. */
static void fake_welcome(int c, int mfd, size_t size, uint64_t epoch)
{
	struct gov_msg w = { .magic = GOV_MSG_MAGIC, .version = GOV_WIRE_VERSION,
			     .type = GOV_MSG_WELCOME, .size = size, .epoch = epoch };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &w, sizeof w };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof cbuf };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &mfd, sizeof(int));
	sendmsg(c, &mh, 0);
}

/* A fake agent that hands out a region of another version. */
static int fake_fd;
static void *fake_agent(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(fake_fd, NULL, NULL);
		if (c < 0)
			return NULL;
		struct gov_msg m;
		if (recv(c, &m, sizeof m, 0) != sizeof m) {
			close(c);
			continue;
		}
		size_t size = 1 << 20;
		int mfd = memfd_create("fake", 0);
		ftruncate(mfd, (off_t)size);
		struct gov_region_hdr *h = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		h->magic = GOV_REGION_MAGIC;
		h->version = 99;
		h->hdr_size = sizeof *h;
		h->size = size;
		munmap(h, size);
		fake_welcome(c, mfd, size, 0);
		close(mfd);
		close(c);
	}
}

static void test_wrong_region(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s.sock", harness_run_dir(), R);
	fake_fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	bind(fake_fd, (struct sockaddr *)&sa, sizeof sa);
	listen(fake_fd, 8);
	pthread_t t;
	pthread_create(&t, NULL, fake_agent, NULL);
	usleep(400000);
	ok(!govrt_connected(), "govrt refuses a region of another version");
	is_long(gadd(3, 4), 7, "and its calls keep running natively");
	char *err = read_file(stderr_path);
	char want[80];
	snprintf(want, sizeof want, "field version (version 99, this govrt speaks %d)", GOV_REGION_VERSION);
	has_str(err, want, "the refusal names the field");
	free(err);
	shutdown(fake_fd, SHUT_RDWR);
	close(fake_fd);
	pthread_join(t, NULL);
	unlink(sa.sun_path);
}

/* A fake agent with a well-formed region whose table sends add to it,
 * answering every call NATIVE with reply_body's first reply_len bytes as
 * the argument words. */
#define FAKE_SLOTS 4
#define FAKE_SLOT_SIZE 4096
#define FAKE_TABLE 4
#define FAKE_DYN 32768
static uint64_t reply_body[4];
static _Atomic uint32_t reply_len, fake_stop;

static void fake_serve(struct gov_region_hdr *h)
{
	while (!atomic_load(&fake_stop)) {
		for (uint32_t i = 0; i < h->nslots; i++) {
			struct gov_slot *s = gov_region_slot(h, i);
			if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != GOV_SLOT_REQUEST)
				continue;
			uint32_t len = atomic_load(&reply_len);
			memcpy(s->payload, reply_body, len);
			s->rep = (struct gov_wire_rep){ .magic = GOV_WIRE_REP_MAGIC, .version = GOV_WIRE_VERSION,
							.status = GOV_WIRE_OK, .action = GOV_ACT_NATIVE,
							.seq = s->seq, .body_len = len };
			uint32_t request = GOV_SLOT_REQUEST;
			if (__atomic_compare_exchange_n(&s->state, &request, GOV_SLOT_REPLY, 0,
							__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) &&
			    __atomic_load_n(&s->client_sleeping, __ATOMIC_SEQ_CST))
				gov_futex_wake(&s->state, 1);
		}
		usleep(100);
	}
}

static void *fake_slot_agent(void *arg)
{
	(void)arg;
	int c = accept(fake_fd, NULL, NULL);
	struct gov_msg m;
	if (c < 0 || recv(c, &m, sizeof m, 0) != sizeof m)
		return NULL;
	uint32_t table_off = 4 * GOV_CACHELINE, dyn_off = table_off + FAKE_TABLE * sizeof(struct gov_decision);
	dyn_off = (dyn_off + GOV_CACHELINE - 1) / GOV_CACHELINE * GOV_CACHELINE;
	uint32_t slots_off = dyn_off + FAKE_DYN;
	size_t size = slots_off + FAKE_SLOTS * FAKE_SLOT_SIZE;
	int mfd = memfd_create("fake-slots", 0);
	if (ftruncate(mfd, (off_t)size) < 0)
		return NULL;
	struct gov_region_hdr *h = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	*h = (struct gov_region_hdr){ .magic = GOV_REGION_MAGIC, .version = GOV_REGION_VERSION,
				      .hdr_size = sizeof *h, .size = size, .agent_epoch = 7,
				      .nslots = FAKE_SLOTS, .slot_size = FAKE_SLOT_SIZE, .slots_off = slots_off,
				      .table_off = table_off, .table_cap = FAKE_TABLE, .dyn_off = dyn_off,
				      .dyn_cap = FAKE_DYN };
	struct gov_decision *row = gov_region_table(h);
	*row = (struct gov_decision){ .match = GOV_MATCH_FUNCTION, .action = GOV_ACT_TRACE };
	snprintf(row->name, sizeof row->name, "add");
	h->table_count = 1;
	h->table_rev = 1;
	fake_welcome(c, mfd, size, 7);
	close(mfd);
	fake_serve(h);
	close(c);
	munmap(h, size);
	return NULL;
}

/* Answers add(2, 3) NATIVE with len bytes of argument words 10, 20, 30. */
static long add_answered_with(uint32_t len)
{
	reply_body[0] = 10;
	reply_body[1] = 20;
	reply_body[2] = 30;
	atomic_store(&reply_len, len);
	return gadd(2, 3);
}

static void test_native_args_reply(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s.sock", harness_run_dir(), R);
	unlink(sa.sun_path);
	fake_fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	bind(fake_fd, (struct sockaddr *)&sa, sizeof sa);
	listen(fake_fd, 8);
	pthread_t t;
	pthread_create(&t, NULL, fake_slot_agent, NULL);
	ok(wait_connected(1, 5000) == 0, "govrt takes a fake agent's well-formed region");
	is_long(add_answered_with(0), 5, "a NATIVE reply with no argument words: the call's own");
	is_long(add_answered_with(16), 30, "a NATIVE reply with two words: the call runs with them");
	is_long(add_answered_with(12), 5, "12 bytes (not whole words): refused, the fail outcome "
		"(native, its own arguments)");
	is_long(add_answered_with(24), 5, "three words for a call of two: refused, the fail outcome");
	is_long(add_answered_with(8), 13, "one word: the first argument replaced, the second kept");
	char *err = read_file(stderr_path);
	has_str(err, "bad reply from the agent for add: 12 bytes of arguments for a call of 2",
		"the refusal of 12 bytes names what was wrong");
	has_str(err, "bad reply from the agent for add: 24 bytes of arguments for a call of 2",
		"... and of three words");
	free(err);
	atomic_store(&fake_stop, 1);
	shutdown(fake_fd, SHUT_RDWR);
	close(fake_fd);
	pthread_join(t, NULL);
	unlink(sa.sun_path);
	wait_connected(0, 3000);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "as-nobody") == 0) {
		usleep(300000); /* several retries: the refusal must be reported once */
		return !govrt_connected() && gadd(1, 2) == 3 ? 0 : 1;
	}
	harness_reexec(argv, R, NULL);
	snprintf(stderr_path, sizeof stderr_path, "%s/stderr.txt", harness_run_dir());
	pid_t agent = agent_start(R, "verdicts:\n  - function: add\n    action: trace\n", NULL);
	ok(agent > 0 && wait_connected(1, 3000) == 0, "govrt connects to the agent");
	test_other_uid();
	test_malformed_hello();
	test_malformed_frame();
	agent_stop(agent);
	wait_connected(0, 2000);

	int out = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0666), saved = dup(2);
	dup2(out, 2);
	test_wrong_region();
	test_native_args_reply();
	dup2(saved, 2);
	agent = agent_start(R, "verdicts:\n  - function: add\n    action: trace\n", NULL);
	ok(wait_connected(1, 3000) == 0, "with a real agent back, govrt connects");
	agent_stop(agent);
	return done_testing();
}
