/* Per-destination state, bounded: a set-associative table of at most max_keys entries,
 * where a new key evicts the least recently used entry of its set. Each set has its own
 * spin lock, so threads working on different destinations do not meet, and no lock is
 * held across a system call. */
#ifndef BW_KEYED_H
#define BW_KEYED_H

#include <stddef.h>
#include <stdint.h>

#define BW_KEYED_WAYS 8

struct bw_keyed {
	int sets;
	size_t vsize;            /* value bytes, rounded up to 8 */
	unsigned char *mem;      /* sets * ways entries: header then value */
	int *locks;              /* per set: 0 free, else the holder's pid */
	int owned;               /* mem and locks are ours to free */
	int self;                /* this process's lock value */
	int (*alive)(long pid);  /* may be NULL: a held lock is then never taken over */
	/* may be NULL; else an entry whose value it says is busy is never given to another
	 * key (a bulkhead with slots taken: its count must stay where the slots go back) */
	int (*busy)(const void *value);
};

int bw_keyed_init(struct bw_keyed *k, int max_keys, size_t vsize);
void bw_keyed_free(struct bw_keyed *k);
/* Use memory laid out elsewhere (a file shared by several processes). */
void bw_keyed_attach(struct bw_keyed *k, int sets, size_t vsize, void *mem, int *locks);
int bw_keyed_sets(int max_keys);
size_t bw_keyed_entry_size(size_t vsize);
/* Every entry in use: fn(value, arg). No locks taken: a reader's snapshot. */
void bw_keyed_each(const struct bw_keyed *k, void (*fn)(const void *value, void *arg),
		   void *arg);

/* Lock the entry for key and return its value, zeroed if the key is new. NULL when the lock
 * cannot be had (a hook in a signal handler that interrupted the holder, a holder in
 * another process stopped for 200 ms), or when the key is new and every entry of its set
 * is busy: the caller then goes without. A lock whose holder
 * died is taken over. Unlock with the returned set number. */
void *bw_keyed_lock(struct bw_keyed *k, uint64_t key, int64_t now, int *set);
void bw_keyed_unlock(struct bw_keyed *k, int set);
/* Where the key of the entry whose value is v lies (it changes when the entry is given to
 * another key). */
const uint64_t *bw_keyed_key_of(const void *v);

/* In a forked child: a private table's locks, held by threads that do not exist there,
 * are released; in a shared one the child takes its new pid as its lock value. */
void bw_keyed_after_fork(struct bw_keyed *k, int self);
int bw_keyed_count(const struct bw_keyed *k);

/* A spin lock holding its holder's id (a pid across processes). Waits at most 200 ms,
 * yielding, then -1; -1 at once from a signal handler that interrupted this thread while
 * it held one. One whose holder is no longer alive is taken over. */
int bw_spin_lock_wait(int *lock, int self, int (*alive)(long pid));

/* Locks this thread holds. Locks never nest, so a thread that wants one while holding
 * one is a signal handler that interrupted the holder: waiting would wait for itself. */
extern __thread int bw_spin_held __attribute__((tls_model("initial-exec")));

/* Inline: every guarded call takes one, and it is nearly always free. */
static inline int bw_spin_lock(int *lock, int self, int (*alive)(long pid))
{
	int expect = 0;
	if (__atomic_compare_exchange_n(lock, &expect, self, 0, __ATOMIC_ACQUIRE,
					__ATOMIC_RELAXED)) {
		bw_spin_held++;
		return 0;
	}
	return bw_spin_lock_wait(lock, self, alive);
}

static inline void bw_spin_unlock(int *lock)
{
	bw_spin_held--;
	__atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}

/* 64-bit key of some bytes (never 0). */
uint64_t bw_key_bytes(const void *p, size_t n, uint64_t seed);

#endif
