/*
 * Logging for the daemon and the CLI (the client library never logs; it keeps a per-thread error
 * message instead). Messages carry syslog priorities: on stderr under systemd they get the
 * "<N>" prefix journald parses; detached, they go to syslog(3); on a terminal, a plain prefix.
 */
#pragma once

#include "macro.h"

#include <stdbool.h>
#include <syslog.h>

enum log_target {
	LOG_TARGET_CONSOLE, /* stderr, "daxpoold: error: ..." */
	LOG_TARGET_JOURNAL, /* stderr with "<3>" priority prefixes, for journald */
	LOG_TARGET_SYSLOG,  /* syslog(3), for a detached daemon */
};

/* Picks the target from the environment (JOURNAL_STREAM → journal) unless forced. */
void log_setup(const char *ident, int max_level);
void log_set_target(enum log_target target);
/* With the syslog target, warnings and errors go to stderr too (a detached daemon's start-up,
 * whose starter waits on the terminal). */
void log_set_echo_stderr(bool echo);
void log_set_max_level(int level);
int log_get_max_level(void);

/* Logs and returns error (a negative errno, passed through so callers can `return log_...`).
 * errno is set to -error for %m. */
int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
	_printf_(5, 6);

/* The level is checked before the call, as systemd does: a filtered message costs no varargs
 * call and its arguments are not evaluated (the daemon has log_info/log_debug on every request). */
#define log_full_errno(level, error, ...)                                                           \
	({                                                                                          \
		int _lvl = (level), _err = (error);                                                 \
		_lvl <= log_get_max_level() ? log_internal(_lvl, _err, __FILE__, __LINE__, __VA_ARGS__) \
					    : _err;                                                 \
	})
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
