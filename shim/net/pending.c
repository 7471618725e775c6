/* A small fixed table: slots are claimed and released with compare-and-swap on the fd, so
 * it needs no lock and no allocation. When it is full the outcome just goes unrecorded. */
#include <string.h>
#include "pending.h"

#define SLOTS 64
#define FREE (-1)
#define BUSY (-2)

static struct {
	int fd;
	struct bw_pending p;
} slots[SLOTS] = { [0 ... SLOTS - 1] = { .fd = FREE } };
static int count;

void bw_pending_add(int fd, const struct bw_rule *rule, const struct sockaddr *sa, socklen_t len,
		    int64_t started, int64_t admitted)
{
	/* FREE and BUSY are negative: a negative fd would be read as a slot's state */
	if (fd < 0)
		return;
	if (len > sizeof(struct sockaddr_storage))
		len = sizeof(struct sockaddr_storage);
	for (int i = 0; i < SLOTS; i++) {
		int expect = FREE;
		if (!__atomic_compare_exchange_n(&slots[i].fd, &expect, BUSY, 0, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue;
		slots[i].p.rule = rule;
		memcpy(&slots[i].p.addr, sa, len);
		slots[i].p.len = len;
		slots[i].p.n = bw_attempt_n;
		slots[i].p.mark = bw_tally_cur;
		slots[i].p.started = started;
		slots[i].p.admitted = admitted;
		__atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&slots[i].fd, fd, __ATOMIC_RELEASE);
		return;
	}
}

int bw_pending_take(int fd, struct bw_pending *out)
{
	if (fd < 0)
		return 0;
	for (int i = 0; i < SLOTS; i++) {
		int expect = fd;
		if (!__atomic_compare_exchange_n(&slots[i].fd, &expect, BUSY, 0, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue;
		*out = slots[i].p;
		__atomic_sub_fetch(&count, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&slots[i].fd, FREE, __ATOMIC_RELEASE);
		return 1;
	}
	return 0;
}

int bw_pending_any(void)
{
	return __atomic_load_n(&count, __ATOMIC_RELAXED) > 0;
}
