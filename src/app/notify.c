/*
 * notify.c: notice channels (see notify.h). The log channel writes one
 * "notice" line naming the contact by organisation, never by address: the
 * address stays in the database.
 */
#include "app/notify.h"

#include "core/log.h"

static void log_channel(const struct notice *n)
{
	log_event(LOG_WARN, "notice", "notice", n->event, "org_id", n->org_id ? n->org_id : "",
	          "scope", n->scope, "target_id", n->target_id ? n->target_id : "", "reason",
	          n->reason ? n->reason : "", "contact",
	          n->contact && *n->contact ? "on file" : "none", "request_id",
	          n->request_id ? n->request_id : "", NULL);
}

static const struct notify_channel channels[] = {
    {"log", log_channel},
};

void notify_send(const struct notice *n)
{
	for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++)
		channels[i].send(n);
}
