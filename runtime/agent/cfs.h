/* runtime/agent/cfs.h - the callee agent's cfs dispatcher (cfs.c): forwarded
 * calls that wait for this resource's serving process go in order of their
 * caller's weighted virtual runtime. Not the weights' source: those are the
 * rule documents' cfs: entries (rules/ruledoc.h), kept in edge_rules. */
#ifndef GOV_AGENT_CFS_H
#define GOV_AGENT_CFS_H

#include <stdint.h>

/* Waits for from's turn, at most wait_ms.
 * Returns 0 when the call may run, -1 (ETIMEDOUT in errno) when it waited
 * too long and must not run. Each 0 is followed by one cfs_leave. */
int cfs_enter(const char *from, int wait_ms);
/* The call that cfs_enter let run took service_ns: charge its caller
 * (weight: its cfs weight now, 0 = the default) and let the next one go. */
void cfs_leave(const char *from, unsigned weight, uint64_t service_ns);
/* ,"cfs":{...}: per caller, calls and virtual runtime. */
size_t cfs_stats_json(char *out, size_t cap);

#endif
