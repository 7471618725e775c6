/* Lease and quorum arithmetic (lease.h). */
#include "lease.h"
#include "redis_url.h"

static double whole(double x)
{
	return (double)(int64_t)x;
}

double bw_lease_size(double rate, double burst, bw_usec sync, int hosts_seen)
{
	if (hosts_seen < 1)
		hosts_seen = 1;
	double lease = whole(rate * (double)sync / 1e6 / hosts_seen + 0.999999);
	if (lease > burst)
		lease = whole(burst);
	return lease < 1 ? 1 : lease;
}

double bw_lease_want(double lease, double held)
{
	double want = whole(lease - held);
	return want > 0 ? want : 0;
}

double bw_local_share(double rate, int hosts, int64_t elapsed)
{
	if (hosts < 1)
		hosts = 1;
	return elapsed > 0 ? (double)elapsed * rate / 1e6 / hosts : 0;
}

double bw_local_cap(double burst, int hosts)
{
	double cap = burst / (hosts < 1 ? 1 : hosts);
	return cap < 1 ? (burst < 1 ? burst : 1) : cap;
}

int bw_link_result(struct bw_link *l, int ok, int64_t now)
{
	if (ok) {
		l->fails = 0;
		if (l->mode == BW_LINK_FLEET)
			return 0;
		l->mode = BW_LINK_FLEET;
		l->since = now;
		return 1;
	}
	if (l->fails < BW_LINK_FAILS)
		l->fails++;
	if (l->mode == BW_LINK_UNREACHABLE || l->fails < BW_LINK_FAILS)
		return 0;
	l->mode = BW_LINK_UNREACHABLE;
	l->since = now;
	return 1;
}

int bw_quorum_reached(const struct bw_fleet *f, int open_hosts)
{
	return open_hosts >= bw_fleet_quorum(f);
}
