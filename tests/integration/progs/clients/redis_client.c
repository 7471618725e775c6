/* A Redis client on hiredis for the redis tests.
 *
 * usage: redis_client HOST PORT      (HOST starting with '/': a unix socket, PORT ignored)
 *
 * Connects with redisConnect (redisConnectUnix), printing "connected" or "connect error
 * FD ERRSTR" (the context's descriptor and message; the program goes on without a
 * connection), then runs the lines of its standard input in order, printing one line
 * for each, and stops at the first failed command (exit 1):
 *   WORD...             redisCommandArgv with the words as arguments
 *   \fmt FORMAT ARG     redisCommand(c, FORMAT, ARG): one %s in FORMAT
 *   \append WORD...     redisAppendCommandArgv: "ok"
 *   \getreply           redisGetReply: the reply as below
 *   \reconnect          redisReconnect: "ok" or "error ERRSTR"
 *   \connect            redisFree, then a new context as at the start
 *   \async              redisAsyncConnect (redisAsyncConnectUnix): "async ERR ERRSTR",
 *                       then redisAsyncFree (no event loop: the start is what is looked at)
 *   \sleep MS           wait
 * A reply prints as "status S", "int N", "str S", "nil", "array N", "error MSG"; a
 * context error (no reply) as "ioerror ERR ERRSTR". Every line is flushed at once. */
#include <async.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *host;
static int port;

static redisContext *open_ctx(void)
{
	redisContext *c = host[0] == '/' ? redisConnectUnix(host) : redisConnect(host, port);
	if (!c) {
		printf("connect error -1 no context\n");
		return NULL;
	}
	if (c->err) {
		printf("connect error %d %s\n", c->fd, c->errstr);
		redisFree(c);
		return NULL;
	}
	printf("connected\n");
	return c;
}

/* 0 when the reply is there (an error reply included), 1 for a context error. */
static int show(redisContext *c, redisReply *r)
{
	if (!r) {
		printf("ioerror %d %s\n", c->err, c->errstr);
		return 1;
	}
	switch (r->type) {
	case REDIS_REPLY_STATUS: printf("status %s\n", r->str); break;
	case REDIS_REPLY_INTEGER: printf("int %lld\n", r->integer); break;
	case REDIS_REPLY_STRING: printf("str %s\n", r->str); break;
	case REDIS_REPLY_NIL: printf("nil\n"); break;
	case REDIS_REPLY_ARRAY: printf("array %zu\n", r->elements); break;
	case REDIS_REPLY_ERROR: printf("error %s\n", r->str); break;
	default: printf("type %d\n", r->type); break;
	}
	freeReplyObject(r);
	return 0;
}

static int split(char *line, const char **argv, size_t *len, int max)
{
	int n = 0;
	for (char *tok = strtok(line, " "); tok && n < max; tok = strtok(NULL, " ")) {
		argv[n] = tok;
		len[n++] = strlen(tok);
	}
	return n;
}

int main(int argc, char **argv)
{
	char line[4096];
	const char *args[64];
	size_t lens[64];
	if (argc < 3) {
		fprintf(stderr, "usage: redis_client HOST PORT\n");
		return 64;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	host = argv[1];
	port = atoi(argv[2]);
	redisContext *c = open_ctx();
	while (fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		int failed = 0;
		if (strcmp(line, "\\connect") == 0) {
			if (c)
				redisFree(c);
			c = open_ctx();
			continue;
		}
		if (strcmp(line, "\\async") == 0) {
			redisAsyncContext *ac = host[0] == '/' ? redisAsyncConnectUnix(host)
							       : redisAsyncConnect(host, port);
			if (!ac) {
				printf("async -1 no context\n");
				continue;
			}
			printf("async %d %s\n", ac->err, ac->err ? ac->errstr : "started");
			redisAsyncFree(ac);
			continue;
		}
		if (strncmp(line, "\\sleep ", 7) == 0) {
			long ms = atol(line + 7);
			struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
			printf("ok\n");
			continue;
		}
		if (!c) {
			printf("ioerror -1 no connection\n");
			return 1;
		}
		if (strncmp(line, "\\fmt ", 5) == 0) {
			char *sp = strrchr(line + 5, ' ');
			if (!sp)
				return 64;
			*sp = '\0';
			failed = show(c, redisCommand(c, line + 5, sp + 1));
		} else if (strncmp(line, "\\append ", 8) == 0) {
			int n = split(line + 8, args, lens, 64);
			failed = redisAppendCommandArgv(c, n, args, lens) != REDIS_OK;
			printf(failed ? "ioerror %d %s\n" : "ok\n", c->err, c->errstr);
		} else if (strcmp(line, "\\getreply") == 0) {
			void *r = NULL;
			if (redisGetReply(c, &r) != REDIS_OK)
				r = NULL;
			failed = show(c, r);
		} else if (strcmp(line, "\\reconnect") == 0) {
			if (redisReconnect(c) == REDIS_OK)
				printf("ok\n");
			else
				printf("error %s\n", c->errstr);
		} else {
			int n = split(line, args, lens, 64);
			failed = show(c, redisCommandArgv(c, n, args, lens));
		}
		if (failed) {
			redisFree(c);
			return 1;
		}
	}
	if (c)
		redisFree(c);
	return 0;
}
