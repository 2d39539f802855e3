/*
 * store_budgets.h: project budgets (INCIDENT.md "Usage and budgets").
 *
 * A budget is a number of requests per calendar month (UTC) and the
 * thresholds, in percent of it, at which usage.budget_threshold goes out
 * (by webhook and, through the outbox's mail fan-out, by email). What
 * counts: the requests the project's keys made, that is request-log rows
 * with a project and no authentication refusal (store_usage.h), whatever
 * their status; a refused attempt naming a key is not the key's use.
 *
 * The request-log writer keeps the month's count (usage_month) in the
 * transaction that inserts the rows and writes a threshold's notice there
 * when its batch crosses it; budget_notices' primary key makes each
 * (project, month, threshold) go out once, whichever writer batch or node
 * crosses first. Setting a budget notifies, in its own transaction, the
 * thresholds the month's count has already reached, and forgets this
 * month's notices of thresholds the new budget puts above the count, so
 * that raising a budget re-arms them.
 */
#ifndef PORTCULLIS_STORE_STORE_BUDGETS_H
#define PORTCULLIS_STORE_STORE_BUDGETS_H

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUDGET_THRESHOLDS_MAX 10                          /* notify_at members at most */
#define BUDGET_PERCENT_MAX    1000                        /* a threshold, in percent */
#define BUDGET_REQUESTS_MAX   1000000000000LL             /* requests_per_month at most (10^12) */
#define BUDGET_NOTIFY_TEXT    (BUDGET_THRESHOLDS_MAX * 5) /* "1000," ten times */

struct store_budget {
	int64_t requests_per_month;           /* 1..BUDGET_REQUESTS_MAX */
	int notify_at[BUDGET_THRESHOLDS_MAX]; /* percent, ascending, unique, 1..BUDGET_PERCENT_MAX
	                                       */
	int n_notify;                         /* 1..BUDGET_THRESHOLDS_MAX */
	int64_t updated_at;
};

/* ---- arithmetic (pure) ---- */

/** True when b's fields are in the ranges above (updated_at not checked). */
bool budget_valid(const struct store_budget *b);
/** The month's request count at which pct percent of rpm is reached: ceil(pct * rpm / 100). */
int64_t budget_threshold_count(int64_t rpm, int pct);
/**
 * The thresholds of b (in order) that a month's count moving from `from` to
 * `to` reaches: those whose count c has from < c <= to. from = 0 gives every
 * threshold reached at to. Into out; how many.
 */
int budget_crossed(const struct store_budget *b, int64_t from, int64_t to,
                   int out[BUDGET_THRESHOLDS_MAX]);
/** notify_at as stored ("50,100"). cap >= BUDGET_NOTIFY_TEXT + 1. */
void budget_notify_format(const struct store_budget *b, char *out, size_t cap);
/** Parse the stored notify_at into b; -1 when it is not a valid list. */
int budget_notify_parse(const char *s, struct store_budget *b);

/* ---- the store ---- */

/** The budget of a project; STORE_ENOTFOUND when it has none. */
int store_budget_get(struct store *st, const char *project_id, struct store_budget *out);
/**
 * Set (b) or remove (b NULL) the budget of project_id of org_id
 * (STORE_ENOTFOUND: no such project in the organisation), with the audit
 * event a, in one transaction. Setting it also notifies the thresholds the
 * current month's count already reaches (once, as the writer does) and
 * re-arms this month's thresholds it puts above the count.
 */
int store_budget_set(struct store *st, const char *org_id, const char *project_id,
                     const struct store_budget *b, const struct audit_input *a);
/** The project's request count of the calendar month holding at_ms (0 when none). */
int store_budget_month_requests(struct store *st, const char *project_id, int64_t at_ms,
                                int64_t *requests);

#endif
