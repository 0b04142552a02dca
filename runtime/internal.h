/* runtime/internal.h - what govrt's files and govagent share inside
 * runtime/ and nothing else: the syscall table lookup, the decision match,
 * futex and logging helpers. Not installed. */
#ifndef GOV_RUNTIME_INTERNAL_H
#define GOV_RUNTIME_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "gov/abi.h"
#include "gov/region.h"

/* syscalls.c: the one syscall table (include/gov/syscalls.def). */
const char *gov_syscall_name(int nr);       /* NULL if unknown */
int gov_syscall_number(const char *name);   /* -1 if unknown */

/* decision.c */
int gov_decision_matches(const struct gov_decision *d, int kind,
			 const char *callee, int sysno);
const char *gov_action_word(int action);    /* "deny", ... or NULL */
int gov_action_from_word(const char *word); /* -1 if unknown */

/* futex words live in shared memory: never FUTEX_PRIVATE_FLAG. */
int gov_futex_wait(volatile uint32_t *word, uint32_t expected, long timeout_ns);
int gov_futex_wake(volatile uint32_t *word, int count);

uint64_t gov_now_ns(void); /* CLOCK_MONOTONIC */

/* The run directory: GOV_RUN_DIR, else $XDG_RUNTIME_DIR/rhodes, else
 * /tmp/rhodes-UID. Fills buf; returns 0 or -1 if it does not fit. */
int gov_run_dir(char *buf, size_t len);
/* <run dir>/<resource>.<suffix> */
int gov_run_path(char *buf, size_t len, const char *resource, const char *suffix);
/* A resource name is 1..63 of [A-Za-z0-9._-], not starting with '.'. */
int gov_resource_name_ok(const char *name);

/* "EACCES" or "13" -> 13; -1 if neither. */
int gov_errno_from_name(const char *s);

#define GOV_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
