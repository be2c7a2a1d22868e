/* The answer-losing proxy of the remote tests; see lossy_proxy.h. Each
 * client connection has a thread (a client keeps several open); bodies must
 * come with a Content-Length (the remotes send none chunked). */
#include "lossy_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define HEAD_MAX 65536
#define IO_TIMEOUT_S 10
#define METHODS_MAX 16

/* What becomes of a chosen request's answer. */
enum fault {
	FAULT_NONE,
	FAULT_RESET,   /* the client's connection is reset */
	FAULT_REPLACE, /* the client gets another status (or none), then a close */
	FAULT_CUT,     /* the client gets the head and part of the body, then a close */
};

struct method_count {
	char method[16];
	int n;
};

struct lossy_proxy {
	int listen_fd, port, server_port;
	pthread_t thread;
	pthread_mutex_t lock;
	char method[16];
	char part[64];    /* the request line must hold this too ("": anything) */
	enum fault fault;
	int status;       /* FAULT_REPLACE's */
	int lose_left, lost;
	struct method_count requests[METHODS_MAX];
	int connections;  /* threads serving one */
	pthread_cond_t done;
	bool stopping;
};

struct connection {
	struct lossy_proxy *p;
	int client;
};

static void set_timeouts(int fd)
{
	struct timeval tv = { IO_TIMEOUT_S, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static bool send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Read until the end of the request head; *len: bytes read (maybe past it),
 * returns the head's length, 0 on EOF or error. */
static size_t read_head(int fd, char *buf, size_t *len)
{
	*len = 0;
	while (*len < HEAD_MAX - 1) {
		ssize_t r = recv(fd, buf + *len, HEAD_MAX - 1 - *len, 0);
		if (r <= 0)
			return 0;
		*len += (size_t)r;
		buf[*len] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		if (end)
			return (size_t)(end - buf) + 4;
	}
	return 0;
}

static unsigned long long content_length(const char *head)
{
	for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n"))
		if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
			return strtoull(line + 17, NULL, 10);
	return 0;
}

static int connect_server(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0)
		set_timeouts(fd);
	return fd;
}

/* Pass the request (head in buf, have bytes read so far) to server, then
 * the rest of its body. */
static bool forward_request(int client, int server, char *buf, size_t head_len, size_t have)
{
	unsigned long long body = content_length(buf), sent = have - head_len;

	if (!send_all(server, buf, have))
		return false;
	while (sent < body) {
		ssize_t r = recv(client, buf, HEAD_MAX, 0);
		if (r <= 0 || !send_all(server, buf, (size_t)r))
			return false;
		sent += (unsigned long long)r;
	}
	return true;
}

/* Count a request of the method that head starts with (n bytes); under p->lock. */
static void count_request(struct lossy_proxy *p, const char *head, size_t n)
{
	for (int i = 0; i < METHODS_MAX; i++) {
		struct method_count *c = &p->requests[i];
		if (!c->method[0] && n < sizeof c->method)
			memcpy(c->method, head, n);
		if (strlen(c->method) == n && strncmp(c->method, head, n) == 0) {
			c->n++;
			return;
		}
	}
}

/* Count the request of head; what becomes of its answer (*status: FAULT_REPLACE's). */
static enum fault take_fault(struct lossy_proxy *p, const char *head, int *status)
{
	size_t n = strcspn(head, " "), line = strcspn(head, "\r");
	char *part;
	enum fault fault = FAULT_NONE;

	pthread_mutex_lock(&p->lock);
	count_request(p, head, n);
	part = strstr(head, p->part);
	if (p->lose_left > 0 && n == strlen(p->method) && strncmp(head, p->method, n) == 0 &&
	    part && part < head + line) {
		p->lose_left--;
		p->lost++;
		fault = p->fault;
		*status = p->status;
	}
	pthread_mutex_unlock(&p->lock);
	return fault;
}

/* Close with a TCP reset, not a FIN. */
static void reset_close(int fd)
{
	struct linger lg = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

/* Pass the server's answer on until the client sends again (its next
 * request on this connection: clients do not pipeline); false when either
 * side is done. */
static bool relay_answer(int server, int client, char *buf)
{
	for (;;) {
		struct pollfd pf[2] = { { .fd = server, .events = POLLIN },
					{ .fd = client, .events = POLLIN } };
		if (poll(pf, 2, IO_TIMEOUT_S * 1000) <= 0)
			return false;
		if (pf[1].revents)
			return true;
		ssize_t r = recv(server, buf, HEAD_MAX, 0);
		if (r <= 0 || !send_all(client, buf, (size_t)r))
			return false;
	}
}

/* Pass the head of the server's answer and half of its body (as far as
 * it came in the first HEAD_MAX bytes) to the client. */
static void relay_part(int server, int client, char *buf)
{
	size_t have, head_len = read_head(server, buf, &have);
	unsigned long long keep = head_len + content_length(buf) / 2;

	while (head_len && have < keep && have < HEAD_MAX) {
		ssize_t r = recv(server, buf + have, HEAD_MAX - have, 0);
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	if (head_len)
		send_all(client, buf, keep < have ? keep : have);
}

/* Answer the client as fault says, once the server answered (and so acted). */
static void answer_with_fault(enum fault fault, int status, int server, int client, char *buf)
{
	if (fault == FAULT_CUT) {
		relay_part(server, client, buf);
		return;
	}
	recv(server, buf, 1, 0);
	if (fault == FAULT_REPLACE && status) {
		int n = snprintf(buf, HEAD_MAX, "HTTP/1.1 %d Injected\r\nContent-Length: 0\r\n"
					       "Connection: close\r\n\r\n", status);
		send_all(client, buf, (size_t)n);
	}
}

/* The requests of one client connection, over one server connection. */
static void handle(struct lossy_proxy *p, int client, char *buf)
{
	int server = connect_server(p->server_port), status = 0;
	enum fault fault = FAULT_NONE;

	while (buf && server >= 0 && fault == FAULT_NONE) {
		size_t have, head_len = read_head(client, buf, &have);
		if (!head_len)
			break;
		fault = take_fault(p, buf, &status); /* before buf holds the body */
		if (!forward_request(client, server, buf, head_len, have))
			break;
		if (fault != FAULT_NONE)
			answer_with_fault(fault, status, server, client, buf);
		else if (!relay_answer(server, client, buf))
			break;
	}
	if (server >= 0)
		close(server);
	if (fault == FAULT_RESET)
		reset_close(client);
	else
		close(client);
}

static void *connection_main(void *arg)
{
	struct connection *conn = arg;
	struct lossy_proxy *p = conn->p;
	char *buf = malloc(HEAD_MAX);

	set_timeouts(conn->client);
	handle(p, conn->client, buf);
	free(buf);
	free(conn);
	pthread_mutex_lock(&p->lock);
	p->connections--;
	pthread_cond_broadcast(&p->done);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void serve(struct lossy_proxy *p, int client)
{
	struct connection *conn = malloc(sizeof *conn);
	pthread_t t;

	if (conn) {
		*conn = (struct connection){ p, client };
		pthread_mutex_lock(&p->lock);
		p->connections++;
		pthread_mutex_unlock(&p->lock);
	}
	if (conn && pthread_create(&t, NULL, connection_main, conn) == 0) {
		pthread_detach(t);
		return;
	}
	if (conn) {
		pthread_mutex_lock(&p->lock);
		p->connections--;
		pthread_mutex_unlock(&p->lock);
	}
	free(conn);
	close(client);
}

static bool stopping(struct lossy_proxy *p)
{
	bool s;

	pthread_mutex_lock(&p->lock);
	s = p->stopping;
	pthread_mutex_unlock(&p->lock);
	return s;
}

static void *proxy_main(void *arg)
{
	struct lossy_proxy *p = arg;

	while (!stopping(p)) {
		struct pollfd pf = { .fd = p->listen_fd, .events = POLLIN };
		if (poll(&pf, 1, 100) <= 0)
			continue;
		int client = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (client >= 0)
			serve(p, client);
	}
	return NULL;
}

static int listen_any_port(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

struct lossy_proxy *lossy_proxy_start(int server_port)
{
	struct lossy_proxy *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->server_port = server_port;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->done, NULL);
	p->listen_fd = listen_any_port(&p->port);
	if (p->listen_fd < 0 || pthread_create(&p->thread, NULL, proxy_main, p) != 0) {
		if (p->listen_fd >= 0)
			close(p->listen_fd);
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->done);
		free(p);
		return NULL;
	}
	return p;
}

int lossy_proxy_port(const struct lossy_proxy *p)
{
	return p->port;
}

static void set_fault(struct lossy_proxy *p, const char *method, const char *part, int n,
		      enum fault fault, int status)
{
	pthread_mutex_lock(&p->lock);
	snprintf(p->method, sizeof p->method, "%s", method);
	snprintf(p->part, sizeof p->part, "%s", part ? part : "");
	p->lose_left = n;
	p->fault = fault;
	p->status = status;
	pthread_mutex_unlock(&p->lock);
}

void lossy_proxy_lose(struct lossy_proxy *p, const char *method, const char *part, int n)
{
	set_fault(p, method, part, n, FAULT_RESET, 0);
}

void lossy_proxy_replace(struct lossy_proxy *p, const char *method, const char *part, int n,
			 int status)
{
	set_fault(p, method, part, n, FAULT_REPLACE, status);
}

void lossy_proxy_cut(struct lossy_proxy *p, const char *method, const char *part, int n)
{
	set_fault(p, method, part, n, FAULT_CUT, 0);
}

int lossy_proxy_lost(struct lossy_proxy *p)
{
	int n;

	pthread_mutex_lock(&p->lock);
	n = p->lost;
	pthread_mutex_unlock(&p->lock);
	return n;
}

int lossy_proxy_requests(struct lossy_proxy *p, const char *method)
{
	int n = 0;

	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < METHODS_MAX; i++)
		if (strcmp(p->requests[i].method, method) == 0)
			n = p->requests[i].n;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void lossy_proxy_stop(struct lossy_proxy *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
	pthread_mutex_lock(&p->lock);
	while (p->connections) /* each ends when its client closes, or times out */
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->done);
	free(p);
}
