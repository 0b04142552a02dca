/* tests/harness.h - what the tests need to run real agents: a private run
 * directory, starting and stopping govagent, changing its rules, reading
 * its statistics. */
#ifndef GOV_TEST_HARNESS_H
#define GOV_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* govrt reads its environment before main, so a test that wants govrt
 * connected calls this first: it makes a private run directory, sets
 * GOV_RUN_DIR, GOV_RESOURCE (if resource) and any "NAME=VALUE" in env, and
 * re-executes the test once. Returns in the re-executed process. */
void harness_reexec(char **argv, const char *resource, const char *const env[]);

const char *harness_run_dir(void);
/* <run dir>/name into buf; with text, the file is written with it (a test
 * that cannot write its own run directory stops: exit 1). */
void harness_file(char *buf, size_t len, const char *name, const char *text);

/* Starts govagent for resource with the given YAML rules text (NULL for no
 * rules) and extra arguments (NULL-terminated, may be NULL); returns once
 * the agent accepts connections. Its log goes to <run dir>/<resource>.log. */
pid_t agent_start(const char *resource, const char *rules, const char *const extra[]);
/* SIGTERM and reap; returns the exit status as waitpid encodes it. */
int agent_stop(pid_t pid);
void agent_kill(pid_t pid); /* SIGKILL and reap */
/* Rewrites the rules file and sends SIGHUP. */
void agent_set_rules(pid_t pid, const char *resource, const char *rules);
/* The top-level number `key` of `govagent --stats` (calls, clients, ...);
 * -1 if the agent did not answer. */
long agent_stat(const char *resource, const char *key);
/* The agent's log so far (malloc'ed). */
char *agent_log_text(const char *resource);
/* 1 once the agent's log has needle, 0 if not within timeout_ms. */
int agent_log_has(const char *resource, const char *needle, int timeout_ms);
/* kill(SIGSTOP) returns before the target has stopped: a thread running
 * on another CPU can still answer a call. 0 once every thread of pid is
 * stopped ('T' or 't' in /proc/PID/task/TID/stat), -1 after 2 s. */
int wait_stopped(pid_t pid);

/* Starts a serving process of resource: this test re-executed as
 * `self serve` (its main must serve its exports there) with GOV_RESOURCE
 * and GOV_EXPORTS set, and waits up to 5 s until the resource's agent logs
 * that it connected; returns its pid (a diagnostic if it never did). */
pid_t serving_start(char *self, const char *resource, const char *exports);

/* A serving process's main (`self serve`): opens the file the environment
 * variable env names, for appending, into *fd (the test's functions write
 * what they did there), and serves this resource's exports until killed;
 * returns 1 if it cannot. */
int harness_serve_records(const char *env, int *fd);

/* A unix socket connected to resource's agent's edge listener
 * (<run dir>/<resource>.edge), as another agent's link would be; -1 with
 * errno if it does not accept. */
int harness_edge_connect(const char *resource);
/* harness_edge_connect, then HELLO for a unix link from an agent called
 * name, with caller epoch epoch: the socket once the agent answers
 * WELCOME with status 0 (that header in *welcome when not NULL), else -1. */
struct gov_xcall_hdr;
int harness_edge_hello(const char *resource, const char *name, uint64_t epoch,
		       struct gov_xcall_hdr *welcome);

/* A client that speaks the process protocol by hand: a socket connected
 * to resource's agent (<run dir>/<resource>.sock), -1 if it does not
 * accept; HELLO as a process of resource, the WELCOME in *welcome and the
 * region's fd in *region_fd (0, or -1 if no WELCOME came); a frame posted
 * in slot 0 of the mapped region h as request seq, waited for up to 2 s
 * and decoded into *rep and *text (0, or -1 with no reply). */
struct gov_msg;
struct gov_region_hdr;
struct gov_wire_rep;
int harness_raw_connect(const char *resource);
int harness_raw_hello(int fd, const char *resource, struct gov_msg *welcome, int *region_fd);
int harness_post(struct gov_region_hdr *h, const void *frame, uint32_t len, uint64_t seq,
		 struct gov_wire_rep *rep, const char **text);

/* Calls fn(seq) for seq from..to-1, errno cleared before each: how many
 * returned 0, how many -1 with EAGAIN (a full queue), how many anything
 * else. */
struct harness_tally { int ok, again, other; };
struct harness_tally harness_tally(long (*fn)(long), long from, long to);

/* Waits until govrt is connected (1) or not (0); returns 0 or -1 on timeout. */
int wait_connected(int want, int timeout_ms);

/* Runs argv with stdout and stderr captured into *out (malloc'ed); returns
 * the exit status as waitpid encodes it. */
int run_capture(char *const argv[], char **out);

/* govctl A1 A2 A3 (NULLs end the list early); its output in *out (malloc'ed)
 * or dropped when out is NULL. Returns its exit status, -1 if it did not exit. */
int govctl_run(char **out, const char *a1, const char *a2, const char *a3);
/* The same with any number of arguments (at most 14), ended by a NULL. */
int govctl_call(char **out, const char *arg, ...) __attribute__((sentinel));
/* The test's own rule store: GOV_STORE=sqlite:<run dir>/store.db and
 * GOV_CACHE_DIR=<run dir>/cache, set for this process and its children. */
void store_env(void);
/* store_env, govctl init, then govctl agent start RESOURCE, and this
 * program connected to it: 0, or -1 if either failed. */
int store_agent_start(const char *resource);
/* Writes text to <run dir>/rule.yaml and runs govctl rule publish on it:
 * the store revision it reached, or 0 (govctl's output on stderr). */
unsigned long long rule_publish(const char *text);

/* 1 if gov_ruledoc_parse refuses text (read as "doc") with an error
 * that holds both where (e.g. ":2:5:") and why; the error in err
 * (tests/documents.c). */
int document_refused(const char *text, const char *where, const char *why, char *err,
		     size_t len);

/* Reads a whole file (malloc'ed) or NULL. */
char *read_file(const char *path);
long long now_ms(void);

#endif
