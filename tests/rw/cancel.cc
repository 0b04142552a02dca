/* tests/rw/cancel.cc - for tests/t_rw_unwind.sh: a thread blocked in
 * libc's read() is cancelled; the destructor of an object in its frame
 * (and of one in the function that called the reading one) must run as
 * the cancellation unwinds through the read. With a rewritten libc the
 * thread is blocked in a trampoline then. The main thread waits until the
 * worker is really inside the read syscall (/proc/self/task/TID/syscall
 * says 0) before it cancels. Prints what happened; not a test by itself. */
#include <atomic>
#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fds[2];
static std::atomic<long> worker_tid;

struct Guard {
	const char *name;
	~Guard() { std::printf("destructor %s ran\n", name); std::fflush(stdout); }
};

__attribute__((noinline)) static void reader()
{
	Guard g{"inner"};
	char c;
	worker_tid = syscall(SYS_gettid);
	if (read(fds[0], &c, 1) >= 0) /* blocks: nobody writes */
		std::printf("read returned\n");
}

static void *worker(void *)
{
	Guard g{"outer"};
	reader();
	return nullptr;
}

static bool in_read(long tid)
{
	char path[64], buf[128] = "";
	std::snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
	FILE *f = std::fopen(path, "r");
	if (!f)
		return false;
	bool r = std::fgets(buf, sizeof buf, f) && std::strncmp(buf, "0 ", 2) == 0;
	std::fclose(f);
	return r;
}

int main()
{
	if (pipe(fds) != 0)
		return 1;
	pthread_t t;
	pthread_create(&t, nullptr, worker, nullptr);
	for (int i = 0; i < 5000 && !(worker_tid && in_read(worker_tid)); i++)
		usleep(1000);
	std::printf("worker in read: %s\n", worker_tid && in_read(worker_tid) ? "yes" : "no");
	std::fflush(stdout);
	pthread_cancel(t);
	void *r = nullptr;
	pthread_join(t, &r);
	std::printf("joined, canceled=%d\n", r == PTHREAD_CANCELED);
	return 0;
}
