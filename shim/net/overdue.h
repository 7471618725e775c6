/* Connections a slow-call breaker waits on (bulwark.yaml(5), BREAKER, trip.slow): a
 * connection whose answer is overdue counts as slow while it is still in flight, not
 * only once the answer comes (a server that hangs would otherwise keep the breaker
 * closed for as long as it hangs). The watched connections of rules with trip.slow are
 * listed here; the connects of such a rule look them over before they are admitted, and
 * each one past `over` is judged slow then (its watch ends: it is judged once). */
#ifndef BW_OVERDUE_H
#define BW_OVERDUE_H

#include "engine.h"

/* fd is watched by a breaker with trip.slow. A full list leaves it to be judged when its
 * answer comes. */
void bw_overdue_add(int fd);
/* Judge the listed connections whose answer is overdue (e's policy's only). */
void bw_overdue_scan(struct bw_engine *e);

#endif
