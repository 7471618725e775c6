/* Fleet mode's arithmetic (docs/design.md §6.1), pure, with the time passed in: how many
 * tokens a host holds as its lease, how many it asks the fleet for, what it gives itself
 * while Redis is out of reach, when the link counts as lost or back, and when enough hosts
 * saw a breaker open for the fleet to open it. The syncer (shim/fleet.c) carries it out. */
#ifndef BW_LEASE_H
#define BW_LEASE_H

#include <stdint.h>
#include "config.h"

/* The most tokens one host holds at once: what the fleet's rate brings in one sync
 * interval, shared by the hosts seen, at least 1 and at most the bucket's burst. Over any
 * time T the fleet then admits at most rate x T + burst + hosts x lease. */
double bw_lease_size(double rate, double burst, bw_usec sync, int hosts_seen);
/* Whole tokens to ask the fleet for, given those the host still holds. */
double bw_lease_want(double lease, double held);
/* Tokens a host gives itself for `elapsed` microseconds while the fleet cannot be asked
 * (on_unreachable: local): its share of the rate, rate / hosts. */
double bw_local_share(double rate, int hosts, int64_t elapsed);
/* The most it holds meanwhile: its share of the burst, at least 1. */
double bw_local_cap(double burst, int hosts);

/* The link to Redis. A failed exchange or two are not yet an outage (replies late on a
 * loaded machine): it is lost after BW_LINK_FAILS failures in a row, back after one
 * success. */
#define BW_LINK_FAILS 3
enum bw_link_mode { BW_LINK_FLEET, BW_LINK_UNREACHABLE };
struct bw_link {
	int mode;                /* enum bw_link_mode */
	int fails;               /* failures in a row */
	int64_t since;           /* when the mode began */
};
/* The outcome of one exchange at `now`; 1 when the mode changed (one `fleet` event). */
int bw_link_result(struct bw_link *l, int ok, int64_t now);

/* Whether `open_hosts` hosts with the breaker open make the fleet open it. */
int bw_quorum_reached(const struct bw_fleet *f, int open_hosts);

#endif
