/* Parsers for operator-supplied values; see parse-util.h. */
#include "parse-util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

int parse_size(const char *s, uint64_t *ret_bytes)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} suffixes[] = {
		{ "", 0 },	  { "B", 0 },	  { "K", 10 },	  { "KB", 10 },	  { "KIB", 10 },
		{ "M", 20 },	  { "MB", 20 },	  { "MIB", 20 },  { "G", 30 },	  { "GB", 30 },
		{ "GIB", 30 },	  { "T", 40 },	  { "TB", 40 },	  { "TIB", 40 },
	};
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL; /* also rejects "-1" and " 1", which strtoull would accept */
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (strcasecmp(end, suffixes[i].suffix) != 0)
			continue;
		if (suffixes[i].shift && v > (UINT64_MAX >> suffixes[i].shift))
			return -ERANGE;
		*ret_bytes = (uint64_t)v << suffixes[i].shift;
		return 0;
	}
	return -EINVAL;
}

int parse_page_size(const char *s, uint64_t *ret_bytes)
{
	uint64_t v;
	int r = parse_size(s, &v);

	if (r < 0)
		return r;
	if (!page_size_name(v))
		return -EINVAL;
	*ret_bytes = v;
	return 0;
}

const char *page_size_name(uint64_t bytes)
{
	switch (bytes) {
	case 4096:
		return "4K";
	case 2u << 20:
		return "2M";
	case 1u << 30:
		return "1G";
	default:
		return NULL;
	}
}

char *format_size(uint64_t v, char *buf, size_t size)
{
	if (v && v % (UINT64_C(1) << 30) == 0)
		snprintf(buf, size, "%" PRIu64 "G", v >> 30);
	else if (v && v % (UINT64_C(1) << 20) == 0)
		snprintf(buf, size, "%" PRIu64 "M", v >> 20);
	else if (v && v % 1024 == 0)
		snprintf(buf, size, "%" PRIu64 "K", v >> 10);
	else
		snprintf(buf, size, "%" PRIu64, v);
	return buf;
}

int parse_mode(const char *s, unsigned *ret_mode)
{
	unsigned long v;
	char *end;

	if (!s || !*s || strspn(s, "01234567") != strlen(s) || strlen(s) > 5)
		return -EINVAL;
	v = strtoul(s, &end, 8);
	if (*end || v > 07777)
		return -EINVAL;
	*ret_mode = (unsigned)v;
	return 0;
}

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",	[LOG_CRIT] = "crit", [LOG_ERR] = "err",
	[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

int parse_log_level(const char *s, int *ret_level)
{
	if (!s)
		return -EINVAL;
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++) {
		if (strcasecmp(s, level_names[i]) == 0 || (s[0] == '0' + i && s[1] == '\0')) {
			*ret_level = i;
			return 0;
		}
	}
	if (strcasecmp(s, "error") == 0) {
		*ret_level = LOG_ERR;
		return 0;
	}
	return -EINVAL;
}

const char *log_level_name(int level)
{
	if (level < 0 || level > LOG_DEBUG)
		return "unknown";
	return level_names[level];
}
