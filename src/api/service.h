/*
 * service.h: the service endpoints: /healthz, /readyz, /metrics and
 * /.well-known/security.txt.
 */
#ifndef PORTCULLIS_API_SERVICE_H
#define PORTCULLIS_API_SERVICE_H

#include "http/router.h"

/** Register the service routes. */
void service_routes(struct router *r);

#endif
