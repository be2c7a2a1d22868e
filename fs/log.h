/* Logging: to stderr in the foreground, to syslog (the journal) in the
 * background. One line per event; never a key, a password or a cleartext
 * name unless debug logging was asked for. */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include <syslog.h>

/* ident: shown with each syslog line, e.g. "umbrafs[/srv/vault]". */
void log_init(bool to_syslog, bool verbose, const char *ident);
bool log_verbose(void);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_verbose()) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
