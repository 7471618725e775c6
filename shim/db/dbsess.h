/* Client handles whose session holds state a new connection would lose (prepared
 * statements, temporary tables, SET, session locks): a hook never reconnects them behind
 * the program's back. One table per client library; lock-free, no allocation (a hook may
 * run in a signal handler). A handle that cannot be recorded (the table is full) turns
 * reconnects off for the whole library: the safe answer. */
#ifndef BW_DBSESS_H
#define BW_DBSESS_H

#define BW_DB_SESSIONS 256

struct bw_db_sessions {
	const void *h[BW_DB_SESSIONS];
	int n;
	int lost;
};

int bw_db_sess_has(struct bw_db_sessions *s, const void *h);
void bw_db_sess_add(struct bw_db_sessions *s, const void *h);
/* h's session is new (made, reset) or gone (closed). */
void bw_db_sess_forget(struct bw_db_sessions *s, const void *h);

#endif
