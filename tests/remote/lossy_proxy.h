/* A proxy on 127.0.0.1 for the remote tests that loses answers: it passes
 * each request to a server on 127.0.0.1 and its answer back, except that
 * the answer to the next requests of a chosen method is lost: the request reaches the server
 * whole, the server answers, and the client's connection is reset instead
 * (or the client gets another status, or a cut answer; see below).
 * The client's retry then meets the effect of its own first attempt. */
#ifndef LOSSY_PROXY_H
#define LOSSY_PROXY_H

struct lossy_proxy;

/* Start a proxy to 127.0.0.1:server_port; NULL on failure. */
struct lossy_proxy *lossy_proxy_start(int server_port);
int lossy_proxy_port(const struct lossy_proxy *p);
/* Lose the answers of the next n requests whose method is method and whose
 * request line holds part (NULL: any). */
void lossy_proxy_lose(struct lossy_proxy *p, const char *method, const char *part, int n);
/* As lossy_proxy_lose, but the client is answered status instead, as a
 * gateway whose upstream failed or took too long (502, 504), and the
 * connection closed; status 0: no answer at all, only the close. */
void lossy_proxy_replace(struct lossy_proxy *p, const char *method, const char *part, int n,
			 int status);
/* As lossy_proxy_lose, but the client gets the head of the server's answer
 * and part of its body, then the connection closes. */
void lossy_proxy_cut(struct lossy_proxy *p, const char *method, const char *part, int n);
/* How many answers were lost (or replaced, or cut) so far. */
int lossy_proxy_lost(struct lossy_proxy *p);
/* How many requests of method the proxy passed on so far. */
int lossy_proxy_requests(struct lossy_proxy *p, const char *method);
void lossy_proxy_stop(struct lossy_proxy *p);

#endif
