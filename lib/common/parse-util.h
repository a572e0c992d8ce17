/* Parsers for values operators type: sizes, page sizes, file modes, log levels. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* "4096", "64K", "2M", "1G", "1T", "2MiB", "1GB" (binary multiples) → bytes.
 * -EINVAL for anything else (empty, negative, junk, fraction), -ERANGE on overflow. */
int parse_size(const char *s, uint64_t *ret_bytes);

/* Exactly 4K, 2M or 1G (also 4096 / 2097152 / 1073741824 and the KiB/MiB/GiB spellings). */
int parse_page_size(const char *s, uint64_t *ret_bytes);

/* 4096 → "4K", 2097152 → "2M", 1073741824 → "1G"; other values → NULL. */
const char *page_size_name(uint64_t bytes);

/* The inverse of parse_size for display: the largest exact unit, e.g. 2097152 → "2M",
 * 1056964608 → "1008M", 4097 → "4097". Writes into buf (24 bytes hold any value); returns buf. */
char *format_size(uint64_t bytes, char *buf, size_t size);

/* Octal mode ≤ 07777, e.g. "0660". */
int parse_mode(const char *s, unsigned *ret_mode);

/* "emerg".."debug" or 0..7 → syslog priority. */
int parse_log_level(const char *s, int *ret_level);
const char *log_level_name(int level);
