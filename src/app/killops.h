/*
 * killops.h: engaging and lifting kill switches, shared by the API and the
 * operator CLI so both write the same audit events and send the same
 * notices. Blocking (store I/O).
 */
#ifndef PORTCULLIS_APP_KILLOPS_H
#define PORTCULLIS_APP_KILLOPS_H

#include "store/store.h"

struct kill_request {
	const char *scope;      /* key | organization | global */
	const char *target_id;  /* key id, org id, or "" */
	const char *org_id;     /* the organisation concerned (audit, notice); NULL for global */
	const char *set_by;     /* root | org */
	const char *actor_type; /* root | key | system */
	const char *actor_id;
	const char *reason;     /* may be NULL */
	const char *request_id; /* NULL from the CLI */
};

/** Engage (audit event + notice to the organisation's contact). */
int killops_engage(struct store *st, const struct kill_request *k);
/** Lift; STORE_ENOTFOUND when nothing was engaged. */
int killops_lift(struct store *st, const struct kill_request *k);

#endif
