/*
 * mail.h: the one mailer: RFC 5322 text/plain UTF-8 messages sent through
 * libcurl's SMTP ([mail]: smtp:// with STARTTLS required|optional|off, or
 * smtps://; optional AUTH with the password read from a file at start).
 *
 * Two ways to send one message to one address: mail_send() blocks (for a
 * caller with a thread to spare, such as magic-link login), and
 * mail_job_new() gives an easy handle the delivery engine adds to its curl
 * multi. mail_notice_render() writes the text of a notice (a kill engaged
 * or lifted, an endpoint failing or disabled, a budget threshold reached)
 * from its webhook message body; it never holds a key, a secret or a hash.
 */
#ifndef PORTCULLIS_DELIVERY_MAIL_H
#define PORTCULLIS_DELIVERY_MAIL_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct mailer;

/** Longest address (RFC 5321: 254 octets in a path). */
#define MAIL_ADDR_MAX 254

/**
 * Every check mailer_open makes of [mail], without opening anything that
 * lasts: the url's scheme (smtp:// or smtps://), from an address, starttls
 * one of required|optional|off, password_file readable with a first line
 * that fits, ca_file readable. 0 (also when url is empty: no mail), or -1
 * with a message in err naming the setting (never the password).
 */
int mailer_config_check(const struct config *cfg, char *err, size_t cap);

/**
 * Set up the mailer from [mail]. 0 with *out NULL when [mail] url is empty
 * (no mail), 0 with *out set, or -1 with mailer_config_check's message in
 * err. Warns in the log when starttls = off on smtp://.
 */
int mailer_open(const struct config *cfg, struct mailer **out, char *err, size_t cap);
/** Wipe the password and free. NULL is a no-op. */
void mailer_free(struct mailer *m);

struct mail_message {
	const char *to;         /* one addr-spec */
	const char *subject;    /* ASCII, one line */
	const char *text;       /* UTF-8 body, lines separated by "\n" */
	const char *message_id; /* the left part of Message-ID (NULL: a new ULID) */
	int64_t date_ms;        /* Date: header (ms since the epoch) */
};

/**
 * The RFC 5322 message (Date, From, To, Subject, Message-ID, MIME-Version,
 * Content-Type text/plain UTF-8, 8bit; CRLF line ends), malloc'd, its
 * length in *len. NULL when to or subject is not a safe single line (CR,
 * LF, control bytes, or to not a plain address).
 */
char *mail_format(const char *from, const struct mail_message *msg, size_t *len);

/** Send msg now (blocking, at most [webhooks] timeout_s). 0, or -1 with a message in err. */
int mail_send(const struct mailer *m, const struct mail_message *msg, char *err, size_t cap);

/** One message being sent on a curl multi. */
struct mail_job;
/** A job for msg (NULL when mail_format refuses it); timeout in ms. */
struct mail_job *mail_job_new(const struct mailer *m, const struct mail_message *msg,
                              long timeout_ms);
/** The job's easy handle (owned by the job). */
CURL *mail_job_easy(struct mail_job *j);
/** Free the job (its easy handle removed from any multi first). */
void mail_job_free(struct mail_job *j);

/** The types mail_notice_render writes (the mailed types), NULL-terminated. */
const char *const *mail_notice_types(void);

/**
 * Subject and text (malloc'd, caller frees both) of the notice mail for a
 * webhook message of type with body (the stored message body JSON). -1 for
 * a type that is not mailed or a body that does not parse.
 */
int mail_notice_render(const char *type, const char *body, char **subject, char **text);

#endif
