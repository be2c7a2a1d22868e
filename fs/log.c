#include "fs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool use_syslog;
static bool verbose;
static char *syslog_ident; /* openlog keeps the pointer: it must outlive logging */

void log_init(bool to_syslog, bool want_verbose, const char *ident)
{
	verbose = want_verbose;
	use_syslog = to_syslog;
	if (to_syslog) {
		free(syslog_ident);
		syslog_ident = strdup(ident ? ident : "umbrafs");
		openlog(syslog_ident ? syslog_ident : "umbrafs", LOG_PID, LOG_DAEMON);
	}
}

bool log_verbose(void)
{
	return verbose;
}

static const char *prio_word(int prio)
{
	switch (prio) {
	case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_DEBUG: return "debug";
	default: return "info";
	}
}

void log_msg(int prio, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (use_syslog)
		syslog(prio, "%s", line);
	else
		fprintf(stderr, "umbrafs: %s: %s\n", prio_word(prio), line);
}
