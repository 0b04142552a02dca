/* tests/rewrite/static_prog.c - a program built with gcc -static -pthread
 * for tests/t_rewrite_static.sh, whose rewritten copy carries govrt-static:
 *   threads N M   N threads, M getppid calls each (and malloc/free, which
 *                 take libc's locks): prints the total and checks each
 *                 answer
 *   live S        calls getppid every 10 ms for up to S seconds, after
 *                 printing "ready"; stops at the first failure and prints
 *                 its errno (a rule published meanwhile)
 *   fork          a child calls getppid 5 times; the parent waits for it
 *   vfork         a vfork child calls getppid once and exits; then the
 *                 parent calls it 3 times
 * Not a benchmark. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long m_calls;
static pid_t parent;

static void *worker(void *arg)
{
	long bad = 0;
	(void)arg;
	for (long i = 0; i < m_calls; i++) {
		if (getppid() != parent)
			bad++;
		if (i % 64 == 0)
			free(malloc(100 + (size_t)i % 4000));
	}
	return (void *)bad;
}

static int threads(int n, long m)
{
	pthread_t t[64];
	long bad = 0;
	m_calls = m;
	parent = getppid();
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, worker, NULL) != 0)
			return 1;
	for (int i = 0; i < n; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad += (long)r;
	}
	printf("threads %d x %ld getppid: %ld wrong\n", n, m, bad);
	return bad != 0;
}

static int live(int seconds)
{
	printf("ready\n");
	fflush(stdout);
	for (long i = 0; i < seconds * 100L; i++) {
		errno = 0;
		if (syscall(SYS_getppid) < 0) {
			printf("getppid failed: %s\n", strerror(errno));
			return 0;
		}
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	printf("getppid never failed\n");
	return 1;
}

static int forked(void)
{
	pid_t c = fork();
	if (c == 0) {
		for (int i = 0; i < 5; i++)
			getppid();
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	printf("child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

static int vforked(void)
{
	pid_t c = vfork();
	if (c == 0) {
		syscall(SYS_getppid);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	for (int i = 0; i < 3; i++)
		getppid();
	printf("vfork child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "threads") == 0)
		return threads(atoi(argv[2]) > 64 ? 64 : atoi(argv[2]), atol(argv[3]));
	if (argc == 3 && strcmp(argv[1], "live") == 0)
		return live(atoi(argv[2]));
	if (argc == 2 && strcmp(argv[1], "fork") == 0)
		return forked();
	if (argc == 2 && strcmp(argv[1], "vfork") == 0)
		return vforked();
	fprintf(stderr, "usage: static_prog threads N M | live SECONDS | fork | vfork\n");
	return 2;
}
