/* The program's own MySQL client library, libmariadb (or a libmysqlclient that is
 * libmariadb under that name), found at run time through the foreign-library resolver
 * (foreign.h): the library never links it, and builds without its headers. The values it
 * needs are declared here as mysql.h and mariadb_com.h define them, part of the
 * library's ABI (libmariadb.so.3, symbol versions libmysqlclient_18 and libmariadb_3).
 *
 * mariadb_get_infov is what tells a session's transaction state; a library without it
 * (Oracle's libmysqlclient) is passed through untouched: bw_my.get_infov NULL. */
#ifndef BW_MYSQL_REAL_H
#define BW_MYSQL_REAL_H

#include "foreign.h"

typedef struct st_mysql MYSQL;
typedef struct st_mysql_stmt MYSQL_STMT;

/* enum mysql_option */
#define BW_MY_OPT_PROTOCOL 9
#define BW_MY_OPT_RECONNECT 20
/* enum mysql_protocol_type */
#define BW_MY_PROTOCOL_TCP 1
/* enum mariadb_value */
#define BW_MY_CONN_HOST 10
#define BW_MY_CONN_PORT 12
#define BW_MY_CONN_SCHEMA 15
#define BW_MY_CONN_UNIX_SOCKET 26
#define BW_MY_CONN_SERVER_STATUS 30
/* server_status bits */
#define BW_MY_STATUS_IN_TRANS 1u
#define BW_MY_STATUS_AUTOCOMMIT 2u
/* client_flag: keep the options the program set when a connect fails */
#define BW_MY_CLIENT_REMEMBER_OPTIONS (1UL << 31)
/* the size of the message buffer mysql_error points into (MYSQL_ERRMSG_SIZE) */
#define BW_MY_ERRMSG_SIZE 512
/* the client library's defaults, as Debian builds it (MARIADB_UNIX_ADDR, MARIADB_PORT) */
#define BW_MY_DEFAULT_SOCKET "/run/mysqld/mysqld.sock"
#define BW_MY_DEFAULT_PORT 3306

struct bw_my_real {
	MYSQL *(*real_connect)(MYSQL *, const char *, const char *, const char *, const char *,
			       unsigned, const char *, unsigned long);
	int (*real_query)(MYSQL *, const char *, unsigned long);
	int (*query)(MYSQL *, const char *);
	int (*ping)(MYSQL *);
	void (*close)(MYSQL *);
	MYSQL_STMT *(*stmt_init)(MYSQL *);
	int (*stmt_prepare)(MYSQL_STMT *, const char *, unsigned long);
	int (*stmt_execute)(MYSQL_STMT *);
	char (*stmt_close)(MYSQL_STMT *);
	unsigned (*errno_)(MYSQL *);
	const char *(*error)(MYSQL *);
	const char *(*sqlstate)(MYSQL *);
	unsigned (*stmt_errno)(MYSQL_STMT *);
	int (*get_socket)(MYSQL *);
	int (*get_optionv)(MYSQL *, int, void *, ...);
	int (*optionsv)(MYSQL *, int, ...);
	char (*get_infov)(MYSQL *, int, void *, ...);       /* libmariadb only */
	char (*reconnect)(MYSQL *);                         /* libmariadb only */
};

extern struct bw_my_real bw_my;
extern struct bw_foreign bw_my_lib;

#endif
