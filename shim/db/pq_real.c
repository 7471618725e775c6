/* libpq's functions as the resolver looks them up. */
#include "pq_real.h"

struct bw_pq_real bw_pq;

#define PQ(field, name, optional) BW_FOREIGN_SYM(struct bw_pq_real, field, name, optional)

static const struct bw_foreign_sym names[] = {
	PQ(connectdb, "PQconnectdb", 0),
	PQ(connectdb_params, "PQconnectdbParams", 0),
	PQ(setdb_login, "PQsetdbLogin", 0),
	PQ(connect_start, "PQconnectStart", 0),
	PQ(connect_start_params, "PQconnectStartParams", 0),
	PQ(connect_poll, "PQconnectPoll", 0),
	PQ(reset, "PQreset", 0),
	PQ(reset_start, "PQresetStart", 0),
	PQ(reset_poll, "PQresetPoll", 0),
	PQ(finish, "PQfinish", 0),
	PQ(exec, "PQexec", 0),
	PQ(exec_params, "PQexecParams", 0),
	PQ(prepare, "PQprepare", 0),
	PQ(exec_prepared, "PQexecPrepared", 0),
	PQ(send_query, "PQsendQuery", 0),
	PQ(send_query_params, "PQsendQueryParams", 0),
	PQ(send_prepare, "PQsendPrepare", 0),
	PQ(send_query_prepared, "PQsendQueryPrepared", 0),
	PQ(get_result, "PQgetResult", 0),
	PQ(consume_input, "PQconsumeInput", 0),
	PQ(set_single_row_mode, "PQsetSingleRowMode", 1),
	PQ(status, "PQstatus", 0),
	PQ(transaction_status, "PQtransactionStatus", 0),
	PQ(error_message, "PQerrorMessage", 0),
	PQ(host, "PQhost", 0),
	PQ(hostaddr, "PQhostaddr", 1),
	PQ(port, "PQport", 0),
	PQ(db, "PQdb", 0),
	PQ(socket, "PQsocket", 0),
	PQ(pipeline_status, "PQpipelineStatus", 1),
	PQ(result_status, "PQresultStatus", 0),
	PQ(result_error_field, "PQresultErrorField", 0),
	PQ(clear, "PQclear", 0),
	PQ(conninfo_parse, "PQconninfoParse", 0),
	PQ(conninfo_free, "PQconninfoFree", 0),
	PQ(freemem, "PQfreemem", 0),
};

static const char *const sonames[] = { "libpq.so.5", NULL };

struct bw_foreign bw_pq_lib = {
	.sonames = sonames,
	.syms = names,
	.n_syms = BW_FOREIGN_COUNT(names),
	.fns = &bw_pq,
};
