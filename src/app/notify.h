/*
 * notify.h: the notifier. Engaging a kill switch is never silent: besides
 * the audit event, a notice goes to the organisation's contact through
 * every configured channel. Channels are a const table; today there is the
 * log channel (one structured line); webhook and email plug in later.
 */
#ifndef PORTCULLIS_APP_NOTIFY_H
#define PORTCULLIS_APP_NOTIFY_H

#include "store/store.h"

struct notice {
	const char *event;   /* "kill_switch.engaged", "kill_switch.lifted" */
	const char *org_id;  /* NULL for global */
	const char *contact; /* the organisation's contact email, or NULL */
	const char *scope;   /* key | organization | global */
	const char *target_id;
	const char *reason;
	const char *request_id;
};

struct notify_channel {
	const char *name;
	void (*send)(const struct notice *n);
};

/** Send n through every channel. */
void notify_send(const struct notice *n);

#endif
