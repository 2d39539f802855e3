/*
 * log.c: levelled, structured logging to stderr (see log.h). Each line is
 * formatted into a local buffer and written with one write(2) call.
 */
#include "core/log.h"

#include "core/clock.h"
#include "core/json.h"
#include "core/str.h"

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

/*
 * Lines are built in a strbuf that keeps room for the closing '}' and the
 * newline. Every string from outside goes through json_put_string_lossy
 * (src/core/json.c, the one JSON string escaper): quotes, backslashes and
 * control characters are escaped, non-ASCII is written as \uXXXX, and each
 * byte that is not valid UTF-8 becomes \uFFFD, so a JSON line is ASCII and
 * parses whatever a client sent. A field that does not fit whole is cut
 * inside its value (the string is closed) or left out; the line stays one
 * valid JSON object. Text mode prints key=value, and a value with anything
 * but visible ASCII (or with '"', '\\', '=') as the same escaped, quoted
 * string: a client's CR or LF cannot end the line.
 */
struct line {
	char buf[LOG_LINE_MAX];
	struct strbuf sb;
};

static void line_init(struct line *ln)
{
	strbuf_init(&ln->sb, ln->buf, sizeof ln->buf - 2);
}

/* True when v can be printed bare in text mode. */
static bool bare_text(const char *v)
{
	if (!*v)
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '=')
			return false;
	return true;
}

static void text_value(struct strbuf *sb, const char *v)
{
	if (bare_text(v))
		strbuf_puts(sb, v);
	else
		json_put_string_lossy(sb, v);
}

static void emit_line(struct line *ln)
{
	size_t pos = ln->sb.len;
	if (json_lines)
		ln->buf[pos++] = '}';
	ln->buf[pos++] = '\n';
	ssize_t off = 0;
	while ((size_t)off < pos) {
		ssize_t w = write(STDERR_FILENO, ln->buf + off, pos - (size_t)off);
		if (w <= 0)
			return;
		off += w;
	}
}

static void line_start(struct line *ln, enum log_level level, const char *event)
{
	char ts[32];
	clock_format_rfc3339(clock_now_ms(), ts, sizeof ts);
	struct strbuf *sb = &ln->sb;
	if (json_lines) {
		strbuf_puts(sb, "{\"ts\":\"");
		strbuf_puts(sb, ts);
		strbuf_puts(sb, "\",\"level\":\"");
		strbuf_puts(sb, level_names[level]);
		strbuf_puts(sb, "\",\"event\":");
		json_put_string_lossy(sb, event);
	} else {
		strbuf_puts(sb, ts);
		strbuf_puts(sb, " ");
		strbuf_puts(sb, level_names[level]);
		strbuf_puts(sb, " ");
		text_value(sb, event);
	}
}

static void line_field(struct line *ln, const char *key, const char *val)
{
	struct strbuf *sb = &ln->sb;
	bool number = key[0] == '#'; /* "#status": the value is a number we formatted */
	if (number)
		key++;
	size_t mark = sb->len;
	if (json_lines) {
		strbuf_puts(sb, ",");
		json_put_string_lossy(sb, key);
		strbuf_puts(sb, ":");
	} else {
		strbuf_puts(sb, " ");
		text_value(sb, key);
		strbuf_puts(sb, "=");
	}
	bool kept = !sb->overflow; /* the key fit whole */
	if (kept && json_lines && number) {
		strbuf_puts(sb, val[0] ? val : "null");
		kept = !sb->overflow; /* a number is whole or not at all */
	} else if (kept && json_lines) {
		size_t at = sb->len;
		json_put_string_lossy(sb, val); /* cut inside if need be, but closed */
		kept = sb->len > at;
	} else if (kept) {
		text_value(sb, val); /* a cut text value is still on one line */
	}
	if (!kept) {
		sb->len = mark;
		sb->data[mark] = '\0';
		sb->overflow = true;
	}
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

	struct line ln;
	line_init(&ln);
	line_start(&ln, level, "log");
	line_field(&ln, "msg", msg);
	emit_line(&ln);
}

void log_event(enum log_level level, const char *event, ...)
{
	if (level < min_level)
		return;
	struct line ln;
	line_init(&ln);
	line_start(&ln, level, event);
	va_list ap;
	va_start(ap, event);
	for (;;) {
		const char *key = va_arg(ap, const char *);
		if (!key)
			break;
		const char *val = va_arg(ap, const char *);
		line_field(&ln, key, val ? val : "");
	}
	va_end(ap);
	emit_line(&ln);
}
