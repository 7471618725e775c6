/* The table of held bulkhead slots (hold.h). An entry is free when its count is 0; it is
 * claimed by moving the count from 0 to -1 (being filled), then to 1. */
#include <string.h>
#include "fdtable.h"
#include "hold.h"

#define HOLDS 65536      /* connections under bulkheads at once in one process */

struct hold {
	int refs;                /* descriptors sharing it; 0: free; -1: being filled */
	struct bw_store *store;  /* one for every generation of the policy */
	int slot, scope;
	uint64_t key;
};

static struct hold holds[HOLDS];
static unsigned next;            /* where the search for a free entry starts */
static unsigned used;            /* entries ever claimed, past which none is in use */

void bw_hold_attach(int fd, struct bw_engine *e, struct bw_call *c)
{
	if (!c->slot_held)
		return;
	struct bw_ref ref = bw_engine_slot_ref(e, c);
	unsigned start = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
	uint32_t h = 0;
	for (unsigned i = 0; i < HOLDS && !h; i++) {
		unsigned k = (start + i) % HOLDS;
		int free_ = 0;
		if (__atomic_load_n(&holds[k].refs, __ATOMIC_RELAXED) != 0 ||
		    !__atomic_compare_exchange_n(&holds[k].refs, &free_, -1, 0, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&holds[k].store, e->store, __ATOMIC_RELAXED);
		holds[k].slot = ref.slot;
		holds[k].scope = ref.scope;
		holds[k].key = ref.key;
		__atomic_store_n(&holds[k].refs, 1, __ATOMIC_RELEASE);
		unsigned u = __atomic_load_n(&used, __ATOMIC_RELAXED);
		while (u < k + 1 && !__atomic_compare_exchange_n(&used, &u, k + 1, 0,
								 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
		h = k + 1;
	}
	if (!h) {
		bw_engine_give_slot(e, c);
		return;
	}
	c->slot_held = 0;
	uint32_t was = bw_fd_hold_set(fd, h);
	if (was)
		bw_hold_unref(was);
}

void bw_hold_ref(uint32_t h)
{
	if (h && h <= HOLDS)
		__atomic_add_fetch(&holds[h - 1].refs, 1, __ATOMIC_ACQ_REL);
}

void bw_hold_unref(uint32_t h)
{
	if (!h || h > HOLDS)
		return;
	struct hold *p = &holds[h - 1];
	/* read while the share keeps it: once the count is 0 another may claim it */
	struct bw_ref ref = { p->slot, p->scope, p->key, NULL, NULL };
	struct bw_store *store = __atomic_load_n(&p->store, __ATOMIC_ACQUIRE);
	int left = __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
	if (left == 0 && store)
		bw_store_give_slot(store, &ref);
	else if (left < 0)
		__atomic_store_n(&p->refs, 0, __ATOMIC_RELEASE);   /* a share counted twice */
}

void bw_hold_fail(int fd)
{
	uint32_t h = bw_fd_hold_set(fd, 0);
	if (!h || h > HOLDS)
		return;
	struct hold *p = &holds[h - 1];
	struct bw_ref ref = { p->slot, p->scope, p->key, NULL, NULL };
	/* the slot goes back now; copies of the descriptor that still share the entry find
	 * nothing left to give when they close */
	struct bw_store *store = __atomic_exchange_n(&p->store, NULL, __ATOMIC_ACQ_REL);
	if (store)
		bw_store_give_slot(store, &ref);
	if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) < 0)
		__atomic_store_n(&p->refs, 0, __ATOMIC_RELEASE);
}

void bw_hold_after_fork(void)
{
	unsigned n = __atomic_load_n(&used, __ATOMIC_RELAXED);
	if (!n)
		return;
	bw_fd_forget_holds();
	for (unsigned i = 0; i < n; i++)
		__atomic_store_n(&holds[i].refs, 0, __ATOMIC_RELAXED);
}
