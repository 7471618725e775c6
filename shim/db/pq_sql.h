/* What the text of a statement says, as the pg hook needs to know it before it runs a
 * statement again (bulwark.yaml(5), RETRY, PostgreSQL). Each check is conservative: when
 * the text is beyond it, it gives the answer that retries less. */
#ifndef BW_PQ_SQL_H
#define BW_PQ_SQL_H

/* sql may leave state in the session that a new connection would not have (SET, PREPARE,
 * LISTEN, DECLARE, LOAD, a temporary table, set_config, a session advisory lock). */
int bw_pq_sets_session_state(const char *sql);
/* sql is one statement (a trailing ';' allowed). */
int bw_pq_single_statement(const char *sql);
/* sql is one statement that only reads: running it twice changes nothing. */
int bw_pq_read_only(const char *sql);

#endif
