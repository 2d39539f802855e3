/*
 * metric_value.h: for unit tests, the value of one series in what /metrics
 * renders (metrics_render), 0 for a series not registered yet. Include after
 * cmocka.h.
 */
#ifndef PORTCULLIS_TESTS_METRIC_VALUE_H
#define PORTCULLIS_TESTS_METRIC_VALUE_H

#include <stdint.h>
#include <string.h>

#include "core/metrics.h"
#include "core/str.h"

static inline int64_t metric_value(const char *name)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	metrics_render(&b);
	int64_t v = -1;
	size_t nlen = strlen(name);
	for (const char *line = b.data; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (len > nlen + 1 && strncmp(line, name, nlen) == 0 && line[nlen] == ' ')
			assert_int_equal(
			    parse_int64(line + nlen + 1, len - nlen - 1, INT64_MIN, INT64_MAX, &v),
			    0);
		line = end ? end + 1 : NULL;
	}
	buf_free(&b);
	return v < 0 ? 0 : v; /* not registered yet: nothing counted */
}

#endif
