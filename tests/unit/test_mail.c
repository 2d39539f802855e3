/*
 * test_mail.c: unit tests for src/delivery/mail.c: the RFC 5322 message
 * (headers, CRLF, Message-ID from the sender's domain, header injection
 * refused), every notice text (what happened, when, scope, reason, request
 * id, what to do; never a field it does not name, never a URL's path or
 * query, control bytes flattened), and the mailer's set-up from [mail]
 * (no url = no mail, a bad from refused, the password file's first line,
 * never in a message).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "delivery/mail.h"

static void test_format_has_the_rfc5322_headers_and_crlf(void **state)
{
	(void)state;
	struct mail_message m = {.to = "ops@example.com",
	                         .subject = "Portcullis: a test",
	                         .text = "line one\nline two\r\nline three",
	                         .message_id = "dlv_01JTEST",
	                         .date_ms = 1795860000000LL}; /* 2026-11-28T10:00:00Z, a Saturday */
	size_t len = 0;
	char *s = mail_format("Portcullis <notices@gw.example.org>", &m, &len);
	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	assert_non_null(strstr(s, "Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"));
	assert_non_null(strstr(s, "From: Portcullis <notices@gw.example.org>\r\n"));
	assert_non_null(strstr(s, "To: ops@example.com\r\n"));
	assert_non_null(strstr(s, "Subject: Portcullis: a test\r\n"));
	assert_non_null(strstr(s, "Message-ID: <dlv_01JTEST@gw.example.org>\r\n"));
	assert_non_null(strstr(s, "Content-Type: text/plain; charset=UTF-8\r\n"));
	assert_non_null(strstr(s, "\r\n\r\nline one\r\nline two\r\nline three\r\n"));
	/* No bare LF anywhere. */
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\n')
			assert_int_equal(s[i - 1], '\r');
	free(s);
}

static void test_format_refuses_header_injection(void **state)
{
	(void)state;
	size_t len;
	struct mail_message m = {
	    .to = "ops@example.com\r\nBcc: x@evil.example", .subject = "s", .text = "t"};
	assert_null(mail_format("a@b.example", &m, &len));
	m.to = "ops@example.com";
	m.subject = "s\r\nBcc: x@evil.example";
	assert_null(mail_format("a@b.example", &m, &len));
	m.subject = "s";
	assert_null(mail_format("a@b.example\nBcc: x@evil.example", &m, &len));
	m.to = "Name <ops@example.com>";
	assert_null(mail_format("a@b.example", &m, &len));
	m.to = "no-at-sign";
	assert_null(mail_format("a@b.example", &m, &len));
	m.to = "ops@example.com";
	char *ok = mail_format("a@b.example", &m, &len);
	assert_non_null(ok);
	free(ok);
}

static const char *const killed_body =
    "{\"type\":\"api_key.killed\",\"timestamp\":\"2026-11-22T10:00:00.000Z\",\"data\":"
    "{\"key_id\":\"01JKEY0000000000000000000A\",\"start\":\"pk_live_01JK\",\"org_id\":"
    "\"01JORG0000000000000000000A\",\"project_id\":null,\"name\":\"billing\\r\\nBcc: x\","
    "\"scope\":\"key\",\"reason\":\"leaked on a paste site\",\"request_id\":"
    "\"req_01JREQ0000000000000000000A\",\"at\":\"2026-11-22T10:00:00.000Z\","
    "\"secret\":\"whsec_TOPSECRETTOPSECRETTOPSECRETTOPSECRET\",\"hash\":\"$2b$12$abcdefgh\"}}";

static void test_kill_notice_says_what_when_scope_reason_request_and_what_to_do(void **state)
{
	(void)state;
	char *subject = NULL, *text = NULL;
	assert_int_equal(mail_notice_render("api_key.killed", killed_body, &subject, &text), 0);
	assert_string_equal(subject, "Portcullis: an API key was killed");
	assert_non_null(strstr(text, "An API key was killed."));
	assert_non_null(strstr(text, "When:         2026-11-22T10:00:00.000Z"));
	assert_non_null(strstr(text, "Scope:        key"));
	assert_non_null(strstr(text, "Reason:       leaked on a paste site"));
	assert_non_null(strstr(text, "Request id:   req_01JREQ0000000000000000000A"));
	assert_non_null(strstr(text, "id 01JKEY0000000000000000000A, starts with pk_live_01JK"));
	assert_non_null(strstr(text, "What to do: "));
	/* Fields it does not name never reach the text, and control bytes are flattened. */
	assert_null(strstr(text, "whsec_"));
	assert_null(strstr(text, "TOPSECRET"));
	assert_null(strstr(text, "$2b$"));
	assert_null(strstr(text, "\r"));
	assert_non_null(strstr(text, "billing  Bcc: x"));
	free(subject);
	free(text);
}

static void test_every_mailed_type_renders_and_others_do_not(void **state)
{
	(void)state;
	/* PLAN-10.md's mailed types, each rendered. */
	const char *const *types = mail_notice_types();
	size_t n = 0;
	while (types[n])
		n++;
	assert_int_equal(n, 10);
	assert_string_equal(types[0], "api_key.killed");
	assert_string_equal(types[8], "usage.budget_threshold");
	assert_string_equal(types[9], "api_key.leak_reported");
	for (size_t i = 0; types[i]; i++) {
		char *subject = NULL, *text = NULL;
		assert_int_equal(mail_notice_render(types[i], killed_body, &subject, &text), 0);
		assert_non_null(strstr(text, "What to do: "));
		if (strcmp(types[i], "usage.budget_threshold") != 0) /* no reason: a count */
			assert_non_null(strstr(text, "Reason:       leaked on a paste site"));
		assert_null(strstr(text, "TOPSECRET"));
		free(subject);
		free(text);
	}
	char *subject = NULL, *text = NULL;
	assert_int_equal(mail_notice_render("project.created", killed_body, &subject, &text), -1);
	assert_int_equal(mail_notice_render("api_key.killed", "not json", &subject, &text), -1);
	assert_int_equal(mail_notice_render("api_key.killed", "{\"data\":1}", &subject, &text), -1);
}

static void test_leak_notice_names_the_key_where_it_was_found_and_the_action(void **state)
{
	(void)state;
	const char *body =
	    "{\"type\":\"api_key.leak_reported\",\"timestamp\":\"2026-11-22T10:00:00.000Z\","
	    "\"data\":{\"key_id\":\"01JKEY0000000000000000000A\",\"start\":\"pcl_live_01J\","
	    "\"name\":\"ci\",\"org_id\":\"01JORG0000000000000000000A\",\"reporter\":\"github\","
	    "\"url\":\"https://github.com/o/r/blob/1/.env\",\"source\":\"content\","
	    "\"token_type\":\"pcl_api_key\",\"action_taken\":\"kill\","
	    "\"reason\":\"leak reported by GitHub secret scanning\",\"at\":"
	    "\"2026-11-22T10:00:00.000Z\"}}";
	char *subject = NULL, *text = NULL;
	assert_int_equal(mail_notice_render("api_key.leak_reported", body, &subject, &text), 0);
	assert_non_null(strstr(subject, "found in public"));
	assert_non_null(strstr(text, "id 01JKEY0000000000000000000A, starts with pcl_live_01J"));
	assert_non_null(strstr(text, "Found at:     https://github.com/o/r/blob/1/.env (content, "
	                             "reported by github)"));
	assert_non_null(strstr(text, "Action taken: kill"));
	assert_non_null(strstr(text, "revoke the exposed key"));
	free(subject);
	free(text);
}

static void test_budget_notice_names_the_project_month_threshold_and_count(void **state)
{
	(void)state;
	static const char body[] =
	    "{\"type\":\"usage.budget_threshold\",\"timestamp\":\"2026-12-02T10:00:00.000Z\","
	    "\"data\":{\"project_id\":\"01JPRJ0000000000000000000A\",\"org_id\":"
	    "\"01JORG0000000000000000000A\",\"month\":\"2026-12\",\"threshold\":80,"
	    "\"requests_per_month\":1000000,\"requests\":800003,\"at\":"
	    "\"2026-12-02T10:00:00.000Z\"}}";
	char *subject = NULL, *text = NULL;
	assert_int_equal(mail_notice_render("usage.budget_threshold", body, &subject, &text), 0);
	assert_string_equal(subject, "Portcullis: a usage budget threshold was reached");
	assert_non_null(strstr(text, "Project:      01JPRJ0000000000000000000A\n"));
	assert_non_null(strstr(text, "Month:        2026-12 (UTC)\n"));
	assert_non_null(strstr(text, "Threshold:    80% of 1000000 requests a month\n"));
	assert_non_null(strstr(text, "Requests:     800003 so far this month\n"));
	assert_non_null(strstr(text, "Organization: 01JORG0000000000000000000A\n"));
	assert_non_null(strstr(text, "When:         2026-12-02T10:00:00.000Z"));
	assert_null(strstr(text, "Reason:"));
	assert_null(strstr(text, "Scope:"));
	free(subject);
	free(text);
}

static void test_endpoint_notice_shows_the_host_not_the_path_or_query(void **state)
{
	(void)state;
	const char *body =
	    "{\"type\":\"webhook_endpoint.disabled\",\"timestamp\":\"2026-11-22T10:00:00.000Z\","
	    "\"data\":{\"endpoint_id\":\"ep_01JEP\",\"url\":\"https://hooks.example.com/in?"
	    "token=SECRETTOKEN\",\"reason\":\"gone\",\"failing_since\":"
	    "\"2026-11-21T10:00:00.000Z\",\"at\":\"2026-11-22T10:00:00.000Z\"}}";
	char *subject = NULL, *text = NULL;
	assert_int_equal(mail_notice_render("webhook_endpoint.disabled", body, &subject, &text), 0);
	assert_non_null(strstr(text, "ep_01JEP (host hooks.example.com)"));
	assert_non_null(strstr(text, "Reason:       gone"));
	assert_non_null(strstr(text, "Failing since: 2026-11-21T10:00:00.000Z"));
	assert_null(strstr(text, "SECRETTOKEN"));
	assert_null(strstr(text, "/in"));
	free(subject);
	free(text);
}

static void test_mailer_from_config(void **state)
{
	(void)state;
	struct config cfg;
	char err[256];
	config_defaults(&cfg);
	struct mailer *m = (struct mailer *)1;
	assert_int_equal(mailer_open(&cfg, &m, err, sizeof err), 0);
	assert_null(m); /* no url: no mail */
	free(cfg.mail_url);
	cfg.mail_url = strdup("smtp://127.0.0.1:2525");
	free(cfg.mail_from);
	cfg.mail_from = strdup("not an address");
	assert_int_equal(mailer_open(&cfg, &m, err, sizeof err), -1);
	assert_non_null(strstr(err, "[mail] from"));
	free(cfg.mail_from);
	cfg.mail_from = strdup("Portcullis <n@gw.example.org>");
	char path[] = "/tmp/test_mail_pwXXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hunter2-pass\nsecond line\n", 25), 25);
	close(fd);
	free(cfg.mail_password_file);
	cfg.mail_password_file = strdup("/nonexistent/pw");
	assert_int_equal(mailer_open(&cfg, &m, err, sizeof err), -1);
	assert_non_null(strstr(err, "[mail] password_file"));
	free(cfg.mail_password_file);
	cfg.mail_password_file = strdup(path);
	assert_int_equal(mailer_open(&cfg, &m, err, sizeof err), 0);
	assert_non_null(m);
	struct mail_message msg = {.to = "ops@example.com", .subject = "s", .text = "t"};
	struct mail_job *j = mail_job_new(m, &msg, 1000);
	assert_non_null(j);
	mail_job_free(j);
	mailer_free(m);
	unlink(path);
	free(cfg.mail_url);
	cfg.mail_url = strdup("http://127.0.0.1:2525");
	assert_int_equal(mailer_open(&cfg, &m, err, sizeof err), -1);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_has_the_rfc5322_headers_and_crlf),
	    cmocka_unit_test(test_format_refuses_header_injection),
	    cmocka_unit_test(test_kill_notice_says_what_when_scope_reason_request_and_what_to_do),
	    cmocka_unit_test(test_every_mailed_type_renders_and_others_do_not),
	    cmocka_unit_test(test_leak_notice_names_the_key_where_it_was_found_and_the_action),
	    cmocka_unit_test(test_budget_notice_names_the_project_month_threshold_and_count),
	    cmocka_unit_test(test_endpoint_notice_shows_the_host_not_the_path_or_query),
	    cmocka_unit_test(test_mailer_from_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
