/*
 * daxpoolctl stats --prometheus: the STAT reply in the Prometheus text exposition format, under
 * the same series names daxpoold's metrics file uses (daemon/metrics.c), so a node_exporter
 * textfile written by a timer running this command and the daemon's own file read alike. The
 * daemon's file has more: request counters, latency histograms, holders, slices by owner.
 */
#include "daxpoolctl.h"
#include "daxpool.h"
#include "protocol.h"

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
	if (st->has_limits) {
		one("daxpool_clients", "gauge", "Connected clients.", st->clients);
		one("daxpool_unauthenticated_clients", "gauge", "Connected clients that have not completed HELLO.",
		    st->unauthenticated_clients);
		one("daxpool_hello_timeouts_total", "counter",
		    "Connections closed for not sending HELLO within limits.hello_timeout_ms.", st->hello_timeouts);
		one("daxpool_parked_replies", "gauge", "Replies parked because their clients do not read them.",
		    st->parked_replies);
		one("daxpool_throttled_connections", "gauge",
		    "Connections not read because their uid has limits.inflight_per_uid replies parked.",
		    st->throttled_connections);
		one("daxpool_throttled_connections_total", "counter",
		    "Times a connection was held back for its uid's parked replies.", st->throttled_total);
		one("daxpool_deferred_reads_total", "counter",
		    "Reads put off to the next loop turn so that another uid is served (limits.requests_per_turn).",
		    st->deferred_turns);
	}
	if (st->has_limits && st->has_limit_detail) {
		const uint64_t refused[DXP_LIMIT_COUNT] = {
			[DXP_LIMIT_MAX_CLIENTS] = st->refused_max_clients,
			[DXP_LIMIT_RESERVED_ADMIN] = st->refused_reserved_admin,
			[DXP_LIMIT_CONNECTIONS] = st->refused_connections_per_uid,
			[DXP_LIMIT_UNAUTHENTICATED] = st->refused_unauthenticated_per_uid,
			[DXP_LIMIT_HANDLES] = st->refused_handles_per_uid,
			[DXP_LIMIT_HOLDERS] = st->refused_holders_per_uid,
			[DXP_LIMIT_PINS] = st->refused_pins_per_uid,
			[DXP_LIMIT_CARVES] = st->refused_carves_per_uid,
		};

		family("daxpool_limit_refusals_total", "counter",
		       "Connections and requests refused with EUSERS, by the bound (config key) that refused them.");
		for (unsigned i = 0; i < DXP_LIMIT_COUNT; i++)
			printf("daxpool_limit_refusals_total{limit=\"%s\"} %" PRIu64 "\n", dxp_limit_name(i),
			       refused[i]);
		one("daxpool_carves_pending", "gauge", "ALLOCs waiting for their carved sub-device (dynamic dax regions).",
		    st->carves_pending);
	}
	return fflush(stdout) == 0 && !ferror(stdout) ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
}
