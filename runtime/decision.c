/* runtime/decision.c - which decision applies to a site, and the names of
 * actions. Shared by govrt (turning the table into verdict bytes) and
 * govagent (answering a request), so both read a rule the same way. */
#include <string.h>
#include "internal.h"

/* A function row matches a call site by callee name; a syscall row matches
 * any site that makes or wraps that syscall. */
int gov_decision_matches(const struct gov_decision *d, int kind,
			 const char *callee, int sysno)
{
	if (d->match == GOV_MATCH_SYSCALL)
		return sysno >= 0 && d->sysno == sysno;
	if (d->match == GOV_MATCH_FUNCTION)
		return kind == GOV_SITE_CALL && callee &&
		       strncmp(d->name, callee, sizeof d->name) == 0;
	return 0;
}

static const char *const action_words[] = {
#define GOV_ACTION_WORD(name, code, word, doc) [code] = word,
	GOV_ACTIONS(GOV_ACTION_WORD)
#undef GOV_ACTION_WORD
};

const char *gov_action_word(int action)
{
	if (action < 0 || action >= GOV_ACT_COUNT)
		return NULL;
	return action_words[action];
}

int gov_action_from_word(const char *word)
{
	for (int a = 0; a < GOV_ACT_COUNT; a++)
		if (strcmp(action_words[a], word) == 0)
			return a;
	return -1;
}
