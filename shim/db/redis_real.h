/* The program's own hiredis, found at run time through the foreign-library resolver
 * (foreign.h): the library never links hiredis, and builds without its headers. What it
 * reads of a context and a reply is declared here as hiredis.h lays them out, in the two
 * layouts hiredis has had: 0.13 and 0.14 (err first), and 1.x (a table of functions
 * first, a double in the reply). 1.x is told by the function it added,
 * redisConnectWithOptions; a hiredis with neither layout's marker is passed through. */
#ifndef BW_REDIS_REAL_H
#define BW_REDIS_REAL_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/time.h>
#include "foreign.h"

typedef struct redisContext redisContext;
typedef struct redisReader redisReader;

/* the fields of a context up to its server, as 0.13 and 0.14 have them */
struct bw_redis_ctx0 {
	int err;
	char errstr[128];
	int fd;
	int flags;
	char *obuf;
	void *reader;
	int connection_type;
	struct timeval *timeout;
	struct { char *host; char *source_addr; int port; } tcp;
	struct { char *path; } unix_sock;
};

/* ... and as 1.x has them */
struct bw_redis_ctx1 {
	const void *funcs;
	int err;
	char errstr[128];
	int fd;
	int flags;
	char *obuf;
	void *reader;
	int connection_type;
	struct timeval *connect_timeout;
	struct timeval *command_timeout;
	struct { char *host; char *source_addr; int port; } tcp;
	struct { char *path; } unix_sock;
};

struct bw_redis_reply0 {
	int type;
	long long integer;
	size_t len;
	char *str;
};

struct bw_redis_reply1 {
	int type;
	long long integer;
	double dval;
	size_t len;
	char *str;
};

/* redisOptions (1.x) up to its endpoint */
struct bw_redis_options {
	int type;
	int options;
	const struct timeval *connect_timeout;
	const struct timeval *command_timeout;
	union {
		struct { const char *source_addr; const char *ip; int port; } tcp;
		const char *unix_socket;
		int fd;
	} endpoint;
};

#define BW_REDIS_OK 0
#define BW_REDIS_ERR (-1)
#define BW_REDIS_ERR_IO 1
#define BW_REDIS_ERR_OTHER 2
#define BW_REDIS_ERR_EOF 3
#define BW_REDIS_ERR_TIMEOUT 6
#define BW_REDIS_BLOCK 0x1
#define BW_REDIS_CONN_TCP 0
#define BW_REDIS_CONN_UNIX 1
#define BW_REDIS_OPT_NONBLOCK 0x01
#define BW_REDIS_REPLY_ERROR 6

struct bw_redis_real {
	redisContext *(*connect)(const char *, int);
	redisContext *(*connect_timeout)(const char *, int, const struct timeval);
	redisContext *(*connect_nonblock)(const char *, int);
	redisContext *(*connect_bind_nonblock)(const char *, int, const char *);
	redisContext *(*connect_unix)(const char *);
	redisContext *(*connect_unix_timeout)(const char *, const struct timeval);
	redisContext *(*connect_unix_nonblock)(const char *);
	redisContext *(*connect_fd)(int);
	int (*reconnect)(redisContext *);
	void (*free)(redisContext *);
	int (*free_keep_fd)(redisContext *);
	void *(*vcommand)(redisContext *, const char *, va_list);
	void *(*command_argv)(redisContext *, int, const char **, const size_t *);
	int (*vappend_command)(redisContext *, const char *, va_list);
	int (*append_command_argv)(redisContext *, int, const char **, const size_t *);
	int (*append_formatted)(redisContext *, const char *, size_t);
	int (*get_reply)(redisContext *, void **);
	int (*vformat_command)(char **, const char *, va_list);
	void (*free_command)(char *);
	void (*free_reply)(void *);
	void (*set_error)(redisContext *, int, const char *);
	redisReader *(*reader_create)(void);
	int (*reader_feed)(redisReader *, const char *, size_t);
	int (*reader_get_reply)(redisReader *, void **);
	void (*reader_free)(redisReader *);
	/* the async API's connects: wrappers around the non-blocking ones */
	void *(*async_connect)(const char *, int);
	void *(*async_connect_unix)(const char *);
	void *(*async_connect_with_options)(const struct bw_redis_options *);
	/* the layout markers: 0.13 and later, 1.x */
	redisContext *(*connect_bind_nonblock_reuse)(const char *, int, const char *);
	redisContext *(*connect_with_options)(const struct bw_redis_options *);
};

extern struct bw_redis_real bw_rd;
extern struct bw_foreign bw_rd_lib;

#endif
