/* Handles whose session holds state (dbsess.h). */
#include <stddef.h>
#include "dbsess.h"

int bw_db_sess_has(struct bw_db_sessions *s, const void *h)
{
	if (__atomic_load_n(&s->lost, __ATOMIC_RELAXED))
		return 1;
	if (!__atomic_load_n(&s->n, __ATOMIC_RELAXED))
		return 0;
	for (int i = 0; i < BW_DB_SESSIONS; i++)
		if (__atomic_load_n(&s->h[i], __ATOMIC_RELAXED) == h)
			return 1;
	return 0;
}

void bw_db_sess_add(struct bw_db_sessions *s, const void *h)
{
	if (!h || bw_db_sess_has(s, h))
		return;
	for (int i = 0; i < BW_DB_SESSIONS; i++) {
		const void *expect = NULL;
		if (__atomic_compare_exchange_n(&s->h[i], &expect, h, 0, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			__atomic_add_fetch(&s->n, 1, __ATOMIC_RELAXED);
			return;
		}
	}
	__atomic_store_n(&s->lost, 1, __ATOMIC_RELAXED);
}

void bw_db_sess_forget(struct bw_db_sessions *s, const void *h)
{
	if (!__atomic_load_n(&s->n, __ATOMIC_RELAXED))
		return;
	for (int i = 0; i < BW_DB_SESSIONS; i++) {
		const void *expect = h;
		if (__atomic_compare_exchange_n(&s->h[i], &expect, NULL, 0, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			__atomic_sub_fetch(&s->n, 1, __ATOMIC_RELAXED);
	}
}
