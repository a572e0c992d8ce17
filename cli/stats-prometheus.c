/*
 * daxpoolctl stats --prometheus: the STAT reply in the Prometheus text exposition format, under
 * the same series names daxpoold's metrics file uses (daemon/metrics.c), so a node_exporter
 * textfile written by a timer running this command and the daemon's own file read alike. The
 * daemon's file has more: request counters, latency histograms, holders, slices by owner.
 */
#include "daxpoolctl.h"
#include "daxpool.h"

#include <inttypes.h>
#include <stdio.h>
#include <uuid/uuid.h>

static void family(const char *name, const char *type, const char *help)
{
	printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(const char *name, const char *type, const char *help, uint64_t v)
{
	family(name, type, help);
	printf("%s %" PRIu64 "\n", name, v);
}

int ctl_print_stats_prometheus(const struct daxpool_stats *st)
{
	static const char *const classes[] = { "4K", "2M", "1G" };
	const uint8_t *u = st->uuid;

	family("daxpool_info", "gauge", "The pool served: its UUID, backend and isolation mode (value 1).");
	char uuid[37];

	uuid_unparse_lower(u, uuid);
	printf("daxpool_info{uuid=\"%s\",backend=\"%s\",isolation=\"%s\"} 1\n", uuid,
	       st->backend == 1 ? "devdax" : st->backend == 2 ? "emulated" : "unknown",
	       ctl_isolation_name((int)st->isolation));
	one("daxpool_pool_size_bytes", "gauge", "Bytes of the pool's device or file.", st->pool_size);
	one("daxpool_data_size_bytes", "gauge", "Bytes of the pool's data area.", st->data_size);
	one("daxpool_allocated_bytes", "gauge", "Bytes in live extents (quarantined ones included).",
	    st->allocated_bytes);
	family("daxpool_free_bytes", "gauge", "Free bytes usable at each alignment.");
	for (int i = 0; i < 3; i++)
		printf("daxpool_free_bytes{align=\"%s\"} %" PRIu64 "\n", classes[i], st->free_bytes[i]);
	family("daxpool_largest_free_bytes", "gauge", "The largest single allocation possible at each alignment.");
	for (int i = 0; i < 3; i++)
		printf("daxpool_largest_free_bytes{align=\"%s\"} %" PRIu64 "\n", classes[i], st->largest_free[i]);
	family("daxpool_fragmentation_ratio", "gauge", "1 - largest free / free bytes, at 4K.");
	printf("daxpool_fragmentation_ratio %.6f\n", st->fragmentation);
	one("daxpool_slices", "gauge", "Live records, quarantined ones included.", st->slices);
	one("daxpool_anonymous_slices", "gauge", "Live anonymous slices.", st->anonymous_slices);
	one("daxpool_quarantined_slices", "gauge", "Freed slices waiting for holders, pins or zeroing.",
	    st->quarantined);
	one("daxpool_table_capacity_records", "gauge", "Records the pool's table can hold.", st->table_capacity);
	one("daxpool_badblocks", "gauge", "Known bad ranges of the device.", st->badblocks);
	one("daxpool_badblock_bytes", "gauge", "Bytes in known bad ranges.", st->badblock_bytes);
	one("daxpool_zeroing_pending_bytes", "gauge", "Freed bytes waiting to be zeroed.",
	    st->zeroing_pending_bytes);
	one("daxpool_zeroed_bytes_total", "counter",
	    "Bytes zeroed since the daemon started (rate(): the zeroing bandwidth).", st->zeroed_bytes_total);
	one("daxpool_pins", "gauge", "Declared long-term pins.", st->pins);
	one("daxpool_leases_waiting", "gauge", "Freed slices waiting for their holders or pins to end.",
	    st->leases_waiting);
	return fflush(stdout) == 0 && !ferror(stdout) ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}
