/* Delay before a retry, as bulwark.yaml(5) RETRY documents: exponential growth capped at max, with jitter. */
#ifndef BW_BACKOFF_H
#define BW_BACKOFF_H

#include "config.h"
#include "rng.h"

/* n is the retry number (1 for the first retry). prev is the previous delay returned for
 * this call (decorrelated jitter needs it; pass 0 for n == 1). */
bw_usec bw_backoff_delay(const struct bw_retry *r, int n, bw_usec prev, struct bw_rng *rng);

#endif
