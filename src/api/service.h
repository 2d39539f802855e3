/*
 * service.h: the service endpoints: /healthz, /readyz, /metrics and
 * /.well-known/security.txt.
 */
#ifndef PORTCULLIS_API_SERVICE_H
#define PORTCULLIS_API_SERVICE_H

#include "http/router.h"

struct kv;
struct store;

/** What the service endpoints use, given at registration (cli/serve.c). */
struct service_deps {
	struct store *store;          /* /readyz */
	struct kv *kv;                /* /readyz */
	const char *security_contact; /* security.txt's Contact */
};

/** Register the service routes; d outlives r. */
void service_routes(struct router *r, const struct service_deps *d);

#endif
