/* tests/rewrite/cancel.c - pthread_cancel of a thread blocked in read():
 * with a rewritten libc the thread is in a trampoline when the cancellation
 * signal arrives; its cleanup handler must run and the join must see
 * PTHREAD_CANCELED. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static int fds[2];
static void cleanup(void *a) { (void)a; printf("cleanup ran\n"); }
static void *worker(void *a) {
	(void)a; char c;
	pthread_cleanup_push(cleanup, NULL);
	read(fds[0], &c, 1);   /* blocks: a cancellation point */
	pthread_cleanup_pop(0);
	return NULL;
}
int main(void) {
	pipe(fds); pthread_t t; void *r;
	pthread_create(&t, NULL, worker, NULL);
	usleep(100000);
	pthread_cancel(t);
	pthread_join(t, &r);
	printf("joined, canceled=%d\n", r == PTHREAD_CANCELED);
	return 0;
}
