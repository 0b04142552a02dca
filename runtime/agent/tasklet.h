/* runtime/agent/tasklet.h - tasklets in govagent (tasklet.c): calls a
 * driver schedules are queued per tasklet name and run later, through a
 * serving process of the agent's resource. Not the rules that say which
 * functions are tasklets (rule documents' tasklets:, kept in edge_rules). */
#ifndef GOV_AGENT_TASKLET_H
#define GOV_AGENT_TASKLET_H

#include <stddef.h>
#include <stdint.h>

struct agent;
struct gov_wire_call;
/* Reads GOV_TASKLET_QUEUE_MAX and GOV_TASKLET_DRAIN_MS from the
 * environment, at the agent's start: 0, or -1 with why (what, where, why)
 * for a value that is not a whole number or out of range. */
int tasklet_config(char *why, size_t whylen);
/* Queues a copy of the call frame (len bytes, docs/wire.md) on tasklet
 * name, starting its worker if it has none. 0, or -errno. */
int tasklet_schedule(struct agent *a, const char *name, const void *frame, uint32_t len);
/* 1 if call is a govrt_tasklet_schedule request (GOV_TASKLET_CALLEE). */
int tasklet_is_request(const struct gov_wire_call *call);
/* Answers it: checks the name and that this resource exports the function,
 * queues the call fn(arg) on the tasklet; EMULATE with value 0 or an errno. */
void tasklet_request(struct agent *a, const struct gov_wire_call *call, uint8_t *action,
		     int32_t *err, int64_t *value);
/* A dynamic rule's DEFER: queues the call's frame on the tasklet whose
 * gov_dyn_id is id (a tasklets: name of this resource, else named
 * "tasklet-ID" in hex); a function another resource exports is sent to
 * that resource's agent instead (edge_defer). 0, or the errno to answer
 * (EINVAL: the call wants out-buffers or a struct back).
 * rules_lock held for reading (let go of during a send). */
int tasklet_defer(struct agent *a, uint32_t id, const void *frame, uint32_t len);
/* A DEFER another resource's agent forwarded (edge.c): the frame checked,
 * its function exported by this resource, then queued as tasklet_defer
 * does here. 0, or EBADMSG (the frame does not decode), ENOSYS (not
 * exported here), EAGAIN, ENOMEM, ESHUTDOWN; why says so. rules_lock held. */
int tasklet_forwarded(struct agent *a, const char *from, uint32_t id, const void *frame,
		      uint32_t len, char *why, size_t whylen);
/* A CALL another resource's agent forwarded (edge.c, header h and frame
 * body) of a function this agent's rules list under tasklets: and its
 * resource exports: queued on that tasklet as a DEFER is, and answered in
 * rep as one (OK, value 0; NOT_RUN with EAGAIN, ECANCELED, ENOMEM,
 * ESHUTDOWN, or EINVAL when its type string wants out-buffers or a struct
 * back). Returns 1 when it answered, 0 when the call is no tasklet here
 * (it runs now). Takes rules_lock itself. */
struct gov_xcall_hdr;
int tasklet_called(struct agent *a, const char *from, const struct gov_xcall_hdr *h,
		   const void *body, struct gov_xcall_hdr *rep);
/* 1 if the rules list a tasklet whose function this resource exports: its
 * agent then gives no direct grants (edge.c), whose calls would pass its
 * queues. Takes rules_lock itself. */
int tasklet_listed(struct agent *a);
/* Before the agent stops: refuses new schedulings (ESHUTDOWN) and waits,
 * at most GOV_TASKLET_DRAIN_MS, for the queued calls to run; logs what
 * is still queued then as dropped (tasklet_dropped, per tasklet). */
void tasklet_drain(struct agent *a);
/* govctl tasklet VERB NAME, from a control connection: flush (drop what
 * is queued, logged and counted as dropped), disable (new schedulings are
 * refused with ECANCELED, counted as refused), enable. 0 with a JSON
 * answer in out (done, dropped, was_disabled: its state before, store:
 * the URL of the store it follows, "" for none), or an errno with why in out: EINVAL (an unknown verb or
 * a bad name), ENOENT (no such tasklet: none scheduled, none in the
 * tasklets: rules), ENOMEM. */
int tasklet_control(struct agent *a, const char *verb, const char *name, char *out, size_t cap);
/* The state the rule store keeps (/tasklets/RESOURCE/NAME, written by
 * govctl tasklet disable, deleted by enable): disabled 1 refuses name's
 * schedulings as tasklet_control's disable does, making its queue if it
 * has none; 0 takes them again. 0, or -EINVAL (not a tasklet name),
 * -ENOMEM. */
int tasklet_set_disabled(struct agent *a, const char *name, int disabled);
/* ,"tasklets":[...]: per tasklet, scheduled, ran, failed, queued,
 * refused, dropped, disabled. */
size_t tasklet_stats_json(char *out, size_t cap);

#endif
