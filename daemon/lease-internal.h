/* The structures of leases, holds and holder processes, shared by lease.c and the holder journal
 * (holder-journal.c). Loop thread only. */
#pragma once

#include "lease.h"

#include <ev.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <uthash.h>

struct daxpoold;

/* A process that holds slices; watched through a pidfd so its exit is an event, not a poll. */
struct proc {
	struct daxpoold *d;
	pid_t pid;
	uint64_t starttime; /* /proc/PID/stat field 22: tells a reused pid from the holder */
	int pidfd;	       /* -1: pidfds unavailable, poll_timer watches instead */
	ev_io exit_watcher;
	ev_timer poll_timer;
	LIST_HEAD(, hold) holds;
	UT_hash_handle hh;
};

struct hold {
	struct lease *lease;
	struct proc *proc;
	unsigned refs; /* grants not yet CLOSEd */
	unsigned pins; /* declared pins not yet UNPINned */
	LIST_ENTRY(hold) proc_link, lease_link;
};

enum lease_state {
	LEASE_LIVE,    /* allocated, handed out */
	LEASE_FREED,   /* freed; quarantined in the pool until holders and pins are gone */
	LEASE_GRACE,   /* freed, holders gone, waiting out the pin grace period */
	LEASE_ZEROING, /* queued for zeroing */
};

struct lease {
	struct daxpoold *d;
	uint64_t record_id;
	uint64_t offset, length;
	enum lease_state state;
	bool had_pins;
	unsigned pins;
	LIST_HEAD(, hold) holds;
	ev_timer grace;
	UT_hash_handle hh;
};

struct lease_table {
	struct lease *by_record;
	struct proc *by_pid;
	uint64_t pins;
	/* The holder journal is a shared mapping of a file in the runtime dir: an append is a
	 * memcpy, and what is stored is in the page cache, so it survives a crash of the daemon
	 * (which is all it is for) without a write(2) per grant. */
	int journal_fd;
	char *journal_map;
	size_t journal_size, journal_used;
	char journal_path[PATH_MAX];
	unsigned n_holds;	  /* live (record, process) pairs: what a compact journal holds */
	uint64_t compactions;	  /* runtime rewrites of the journal, for tests and debugging */
};

/* Whether pid is still the process that started at starttime: 1 yes, 0 no, -errno. */
int lease_proc_is(pid_t pid, uint64_t starttime);
/* The lease of record_id, made when missing. */
int lease_get_or_make(struct daxpoold *d, uint64_t record_id, struct lease **ret);
/* The holder process pid (started at starttime), watched from now on. */
int lease_proc_get(struct daxpoold *d, pid_t pid, uint64_t starttime, struct proc **ret);
/* p holds l (a hold of refs 0 and pins 0 when new). */
int lease_hold_add(struct lease *l, struct proc *p, struct hold **ret);

/* holder-journal.c. "+ record pid starttime" when a process becomes a holder, "- ..." when it
 * stops being one; 0, or a warning logged and 0 (a journal that cannot grow only costs
 * quarantine time after a crash). */
int lease_journal_append(struct lease_table *t, char op, uint64_t record_id, const struct proc *p);
/* At start: replays the journal, keeps the holders that are still the same live process, and
 * rewrites it compactly. */
int lease_journal_load(struct daxpoold *d);
