/*
 * reqcount.c: a fixed-count HTTP/1.1 keep-alive load generator for
 * instruction-count measurements (callgrind), where wrk's fixed duration
 * does not fit: sends exactly N GET requests over C connections (each one
 * request at a time) and reports the status codes it got.
 *
 *   cc -O2 -o /tmp/reqcount bench/reqcount.c
 *   /tmp/reqcount PORT PATH N C [HEADER...]
 *   e.g. /tmp/reqcount 8080 /v1/verify 20000 4 "Authorization: Bearer $KEY"
 *
 * Responses are read up to the end of the headers plus Content-Length
 * bytes (no chunked encoding: Portcullis and nginx send Content-Length).
 * Exit status 1 when any response was not 2xx.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64

struct conn {
	int fd;
	char buf[65536];
	size_t len;
	int busy;
};

static int connect_to(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("connect");
		exit(2);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0) {
			perror("write");
			exit(2);
		}
		p += w;
		n -= (size_t)w;
	}
}

/* A complete response in c->buf: its total length and status, or 0. */
static size_t complete(const struct conn *c, int *status)
{
	const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t head = (size_t)(end - c->buf) + 4, body = 0;
	for (const char *p = c->buf; p < end;) {
		const char *nl = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!nl)
			nl = end;
		if ((size_t)(nl - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
			body = strtoul(p + 15, NULL, 10);
		p = nl + 2;
	}
	if (c->len < head + body)
		return 0;
	*status = atoi(c->buf + 9);
	return head + body;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s PORT PATH N C [HEADER...]\n", argv[0]);
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[3]), nc = atoi(argv[4]);
	if (nc < 1 || nc > MAX_CONNS)
		nc = 1;
	char req[8192];
	size_t rl =
	    (size_t)snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", argv[2]);
	for (int i = 5; i < argc; i++)
		rl += (size_t)snprintf(req + rl, sizeof req - rl, "%s\r\n", argv[i]);
	rl += (size_t)snprintf(req + rl, sizeof req - rl, "\r\n");

	static struct conn conns[MAX_CONNS];
	struct pollfd pfd[MAX_CONNS];
	int sent = 0, done = 0, ok = 0, other = 0;
	for (int i = 0; i < nc; i++) {
		conns[i].fd = connect_to(port);
		pfd[i] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
	}
	for (int i = 0; i < nc && sent < n; i++, sent++) {
		send_all(conns[i].fd, req, rl);
		conns[i].busy = 1;
	}
	while (done < n) {
		if (poll(pfd, (nfds_t)nc, 30000) <= 0) {
			fprintf(stderr, "timeout after %d responses\n", done);
			return 2;
		}
		for (int i = 0; i < nc; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct conn *c = &conns[i];
			ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
			if (r <= 0) {
				fprintf(stderr, "connection closed after %d responses\n", done);
				return 2;
			}
			c->len += (size_t)r;
			int status;
			size_t used;
			while ((used = complete(c, &status)) > 0) {
				memmove(c->buf, c->buf + used, c->len - used);
				c->len -= used;
				done++;
				if (status >= 200 && status < 300)
					ok++;
				else
					other++;
				if (sent < n) {
					send_all(c->fd, req, rl);
					sent++;
				}
			}
		}
	}
	printf("%d requests: %d 2xx, %d other\n", done, ok, other);
	return other ? 1 : 0;
}
