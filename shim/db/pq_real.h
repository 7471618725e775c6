/* The program's own libpq, found at run time through the foreign-library resolver
 * (foreign.h): the library never links libpq, and builds without its headers. The few
 * types and values it needs are declared here as libpq-fe.h defines them; they are part
 * of libpq's ABI (libpq.so.5), unchanged since PostgreSQL 7.4 but for the additions noted
 * (a function absent from an older libpq is left NULL). */
#ifndef BW_PQ_REAL_H
#define BW_PQ_REAL_H

#include "foreign.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;
typedef unsigned int Oid;

typedef struct {
	char *keyword;
	char *envvar;
	char *compiled;
	char *val;
	char *label;
	char *dispchar;
	int dispsize;
} PQconninfoOption;

/* ConnStatusType */
#define BW_PQ_CONNECTION_OK 0
#define BW_PQ_CONNECTION_BAD 1
/* PostgresPollingStatusType */
#define BW_PQ_POLLING_FAILED 0
#define BW_PQ_POLLING_OK 3
/* PGTransactionStatusType */
#define BW_PQ_TRANS_IDLE 0
/* ExecStatusType */
#define BW_PQ_BAD_RESPONSE 5
#define BW_PQ_FATAL_ERROR 7
/* PGpipelineStatus */
#define BW_PQ_PIPELINE_OFF 0
/* PQresultErrorField's field code for the SQLSTATE */
#define BW_PQ_DIAG_SQLSTATE 'C'

struct bw_pq_real {
	/* the connect family */
	PGconn *(*connectdb)(const char *);
	PGconn *(*connectdb_params)(const char *const *, const char *const *, int);
	PGconn *(*setdb_login)(const char *, const char *, const char *, const char *,
			       const char *, const char *, const char *);
	PGconn *(*connect_start)(const char *);
	PGconn *(*connect_start_params)(const char *const *, const char *const *, int);
	int (*connect_poll)(PGconn *);
	void (*reset)(PGconn *);
	int (*reset_start)(PGconn *);
	int (*reset_poll)(PGconn *);
	void (*finish)(PGconn *);
	/* statements */
	PGresult *(*exec)(PGconn *, const char *);
	PGresult *(*exec_params)(PGconn *, const char *, int, const Oid *, const char *const *,
				 const int *, const int *, int);
	PGresult *(*prepare)(PGconn *, const char *, const char *, int, const Oid *);
	PGresult *(*exec_prepared)(PGconn *, const char *, int, const char *const *, const int *,
				   const int *, int);
	int (*send_query)(PGconn *, const char *);
	int (*send_query_params)(PGconn *, const char *, int, const Oid *, const char *const *,
				 const int *, const int *, int);
	int (*send_prepare)(PGconn *, const char *, const char *, int, const Oid *);
	int (*send_query_prepared)(PGconn *, const char *, int, const char *const *, const int *,
				   const int *, int);
	PGresult *(*get_result)(PGconn *);
	int (*consume_input)(PGconn *);
	int (*set_single_row_mode)(PGconn *);         /* NULL before PostgreSQL 9.2 */
	/* what a connection and a result say */
	int (*status)(const PGconn *);
	int (*transaction_status)(const PGconn *);
	char *(*error_message)(const PGconn *);
	char *(*host)(const PGconn *);
	char *(*hostaddr)(const PGconn *);            /* NULL before PostgreSQL 12 */
	char *(*port)(const PGconn *);
	char *(*db)(const PGconn *);
	int (*socket)(const PGconn *);
	int (*pipeline_status)(const PGconn *);       /* NULL before PostgreSQL 14 */
	int (*result_status)(const PGresult *);
	char *(*result_error_field)(const PGresult *, int);
	void (*clear)(PGresult *);
	PQconninfoOption *(*conninfo_parse)(const char *, char **);
	void (*conninfo_free)(PQconninfoOption *);
	void (*freemem)(void *);
};

extern struct bw_pq_real bw_pq;
extern struct bw_foreign bw_pq_lib;

#endif
