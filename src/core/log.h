/*
 * log.h: the one levelled logging API. JSON lines by default (text on request),
 * written to stderr with a single write() per line so lines from different
 * threads never interleave.
 *
 * Never pass a secret, a key, a request body, a query string or an IP address
 * to these functions: log lines are read by people who must not see them.
 */
#ifndef PORTCULLIS_CORE_LOG_H
#define PORTCULLIS_CORE_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/** Configure the logger; safe to call again (e.g. after reading the config). */
void log_setup(enum log_level min_level, bool json);
/** Parse "debug", "info", "warn", "error"; returns -1 for anything else. */
int log_level_parse(const char *s);

/** Log a message (printf format) at a level. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/**
 * A structured event line: "event" plus key/value string pairs, terminated
 * by NULL, e.g. log_event(LOG_INFO, "access", "method", "GET", NULL).
 * Values may hold any bytes: they are JSON-escaped with invalid UTF-8
 * replaced by U+FFFD (json_put_string_lossy), so every JSON line parses; in
 * text mode they are printed as key=value, quoted and escaped the same way
 * unless they are plain visible ASCII (no value can end the line).
 * A key starting with '#' ("#status") marks a value the caller formatted
 * as a number: it is written unquoted (without the '#').
 */
void log_event(enum log_level level, const char *event, ...) __attribute__((sentinel));

/** True when a message at this level would be written. */
bool log_enabled(enum log_level level);

#endif
