/*
 * log.c: levelled, structured logging to stderr (see log.h). Each line is
 * formatted into a local buffer and written with one write(2) call.
 */
#include "core/log.h"

#include "core/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;
static bool json_lines = true;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

#define LOG_LINE_MAX 4096

void log_setup(enum log_level level, bool json)
{
	min_level = level;
	json_lines = json;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

bool log_enabled(enum log_level level)
{
	return level >= min_level;
}

/* Append s JSON-escaped to buf at *pos, never past cap (truncates). */
static void append_json_escaped(char *buf, size_t cap, size_t *pos, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (; *s && *pos + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[(*pos)++] = '\\';
			buf[(*pos)++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			buf[(*pos)++] = '\\';
			buf[(*pos)++] = 'u';
			buf[(*pos)++] = '0';
			buf[(*pos)++] = '0';
			buf[(*pos)++] = hex[c >> 4];
			buf[(*pos)++] = hex[c & 15];
		} else {
			buf[(*pos)++] = (char)c;
		}
	}
}

static void append_raw(char *buf, size_t cap, size_t *pos, const char *s)
{
	size_t n = strlen(s);
	if (*pos + n >= cap)
		n = cap - *pos - 1;
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): emit_line ends the line */
	memcpy(buf + *pos, s, n);
	*pos += n;
}

static void emit_line(char *buf, size_t pos)
{
	buf[pos++] = '\n';
	ssize_t off = 0;
	while ((size_t)off < pos) {
		ssize_t w = write(STDERR_FILENO, buf + off, pos - (size_t)off);
		if (w <= 0)
			return;
		off += w;
	}
}

static void line_start(char *buf, size_t cap, size_t *pos, enum log_level level, const char *event)
{
	char ts[32];
	clock_format_rfc3339(clock_now_ms(), ts, sizeof ts);
	if (json_lines) {
		append_raw(buf, cap, pos, "{\"ts\":\"");
		append_raw(buf, cap, pos, ts);
		append_raw(buf, cap, pos, "\",\"level\":\"");
		append_raw(buf, cap, pos, level_names[level]);
		append_raw(buf, cap, pos, "\",\"event\":\"");
		append_json_escaped(buf, cap, pos, event);
		append_raw(buf, cap, pos, "\"");
	} else {
		append_raw(buf, cap, pos, ts);
		append_raw(buf, cap, pos, " ");
		append_raw(buf, cap, pos, level_names[level]);
		append_raw(buf, cap, pos, " ");
		append_raw(buf, cap, pos, event);
	}
}

static void line_field(char *buf, size_t cap, size_t *pos, const char *key, const char *val)
{
	bool number = key[0] == '#'; /* "#status": the value is a number we formatted */
	if (number)
		key++;
	if (json_lines && number) {
		append_raw(buf, cap, pos, ",\"");
		append_json_escaped(buf, cap, pos, key);
		append_raw(buf, cap, pos, "\":");
		append_raw(buf, cap, pos, val[0] ? val : "null");
	} else if (json_lines) {
		append_raw(buf, cap, pos, ",\"");
		append_json_escaped(buf, cap, pos, key);
		append_raw(buf, cap, pos, "\":\"");
		append_json_escaped(buf, cap, pos, val);
		append_raw(buf, cap, pos, "\"");
	} else {
		append_raw(buf, cap, pos, " ");
		append_raw(buf, cap, pos, key);
		append_raw(buf, cap, pos, "=");
		append_raw(buf, cap, pos, val);
	}
}

static void line_end(char *buf, size_t cap, size_t *pos)
{
	if (json_lines)
		append_raw(buf, cap, pos, "}");
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level < min_level)
		return;
	char msg[LOG_LINE_MAX / 2];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	char buf[LOG_LINE_MAX];
	size_t pos = 0;
	line_start(buf, sizeof buf, &pos, level, "log");
	line_field(buf, sizeof buf, &pos, "msg", msg);
	line_end(buf, sizeof buf, &pos);
	emit_line(buf, pos);
}

void log_event(enum log_level level, const char *event, ...)
{
	if (level < min_level)
		return;
	char buf[LOG_LINE_MAX];
	size_t pos = 0;
	line_start(buf, sizeof buf, &pos, level, event);
	va_list ap;
	va_start(ap, event);
	for (;;) {
		const char *key = va_arg(ap, const char *);
		if (!key)
			break;
		const char *val = va_arg(ap, const char *);
		line_field(buf, sizeof buf, &pos, key, val ? val : "");
	}
	va_end(ap);
	line_end(buf, sizeof buf, &pos);
	emit_line(buf, pos);
}
