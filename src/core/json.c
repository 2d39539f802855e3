/*
 * json.c: jansson helpers shared by the API objects (see json.h).
 */
#include "core/json.h"

#include "core/clock.h"

json_t *json_time(int64_t ms)
{
	if (ms < 0)
		return json_null();
	char buf[32];
	clock_format_rfc3339(ms, buf, sizeof buf);
	return json_string(buf);
}

json_t *json_str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}
