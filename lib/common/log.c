/* Priority logging for daxpoold and daxpoolctl; see log.h. */
#include <stdbool.h>
#include "log.h"
#include "parse-util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Process-wide logging configuration: set once at start-up, before any thread exists. */
static struct {
	const char *ident;
	int max_level;
	enum log_target target;
	bool echo_stderr; /* syslog target: warnings and errors also on stderr */
} log_state = { "daxpool", LOG_INFO, LOG_TARGET_CONSOLE, false };

void log_setup(const char *ident, int max_level)
{
	log_state.ident = ident;
	log_state.max_level = max_level;
	log_state.target = getenv("JOURNAL_STREAM") ? LOG_TARGET_JOURNAL : LOG_TARGET_CONSOLE;
}

void log_set_echo_stderr(bool echo)
{
	log_state.echo_stderr = echo;
}

void log_set_target(enum log_target target)
{
	if (target == LOG_TARGET_SYSLOG)
		openlog(log_state.ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_state.target = target;
}

void log_set_max_level(int level)
{
	log_state.max_level = level;
}

int log_get_max_level(void)
{
	return log_state.max_level;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	int saved_errno = errno;
	va_list ap;

	if (level > log_state.max_level) {
		errno = saved_errno;
		return error;
	}
	if (error < 0)
		errno = -error; /* so %m prints the error being logged */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	switch (log_state.target) {
	case LOG_TARGET_JOURNAL:
		fprintf(stderr, "<%d>%s\n", level, msg);
		break;
	case LOG_TARGET_SYSLOG:
		syslog(level, "%s", msg);
		if (log_state.echo_stderr && level <= LOG_WARNING)
			fprintf(stderr, "%s: %s: %s\n", log_state.ident, log_level_name(level), msg);
		break;
	case LOG_TARGET_CONSOLE:
	default:
		if (log_state.max_level >= LOG_DEBUG)
			fprintf(stderr, "%s: %s: %s (%s:%d)\n", log_state.ident, log_level_name(level), msg,
				file, line);
		else
			fprintf(stderr, "%s: %s: %s\n", log_state.ident, log_level_name(level), msg);
		break;
	}
	errno = saved_errno;
	return error;
}
