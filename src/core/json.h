/*
 * json.h: small jansson helpers for the API's JSON objects: timestamps as
 * RFC 3339 UTC with milliseconds, and optional strings as null.
 */
#ifndef PORTCULLIS_CORE_JSON_H
#define PORTCULLIS_CORE_JSON_H

#include <jansson.h>
#include <stdint.h>

/** "2026-01-02T03:04:05.678Z" for ms since the epoch; null when ms < 0 (unset). */
json_t *json_time(int64_t ms);
/** The string, or null when s is NULL or empty. */
json_t *json_str_or_null(const char *s);

#endif
