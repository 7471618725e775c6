/* Name resolution: retry EAI_AGAIN (TRY_AGAIN for the old calls), and remember which
 * addresses each name gave so `dest: name:port` rules can match later connects. A lookup
 * the policy fails itself (a refusal, an injected fault) ends as a real failed lookup
 * ends, every output as glibc leaves it. */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include "errnames.h"
#include "names.h"
#include "hook.h"
#include "real.h"
#include "reload.h"
#include "state.h"

static void remember_ai(const char *name, const struct addrinfo *ai)
{
	for (; name && ai; ai = ai->ai_next)
		bw_names_remember(name, ai->ai_addr, ai->ai_addrlen);
}

static void remember_he(const char *name, const struct hostent *he)
{
	if (!name || !he || !he->h_addr_list)
		return;
	for (char **a = he->h_addr_list; *a; a++) {
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof ss);
		socklen_t len;
		if (he->h_addrtype == AF_INET && he->h_length == 4) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			in->sin_family = AF_INET;
			memcpy(&in->sin_addr, *a, 4);
			len = sizeof *in;
		} else if (he->h_addrtype == AF_INET6 && he->h_length == 16) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			in6->sin6_family = AF_INET6;
			memcpy(&in6->sin6_addr, *a, 16);
			len = sizeof *in6;
		} else {
			continue;
		}
		bw_names_remember(name, (struct sockaddr *)&ss, len);
	}
}

/* The rule for resolving `name`, or NULL. */
static const struct bw_rule *resolve_rule(struct bw_engine *e, const char *name)
{
	struct bw_target t = { .op = BW_OP_RESOLVE, .host = name };
	return name ? bw_engine_match(e, &t, NULL) : NULL;
}

static int h_errno_code(int h)
{
	return h == TRY_AGAIN ? bw_err_eai(EAI_AGAIN)
	       : h == HOST_NOT_FOUND ? bw_err_eai(EAI_NONAME)
	       : h == NO_DATA ? bw_err_eai(EAI_NODATA) : bw_err_eai(EAI_FAIL);
}

/* A lookup the policy failed (a refusal, or an injected fault) without asking the
 * resolver is reported as glibc reports a real failure of that kind: the h_errno the
 * gethostbyname family sets, and errno. glibc leaves EAGAIN in errno after a temporary
 * failure and 0 after a name that does not exist. Where glibc hands on whatever errno its
 * resolver left (EAI_SYSTEM; for the gethostbyname family, every other failure), there
 * is no resolver here: they get ECONNREFUSED, what a refused socket call gets. */
struct made_failure {
	int eai;     /* the EAI_* code */
	int herr;    /* h_errno for the gethostbyname family */
	int err;     /* errno; -1: getaddrinfo leaves it as it was, the others say
		      * ECONNREFUSED */
};

static struct made_failure made_failure(int code)
{
	int eai = BW_ERR_EAI_BASE - code;
	switch (eai) {
	case EAI_AGAIN:
		return (struct made_failure){ eai, TRY_AGAIN, EAGAIN };
	case EAI_NONAME:
		return (struct made_failure){ eai, HOST_NOT_FOUND, 0 };
	case EAI_NODATA: case EAI_ADDRFAMILY:
		return (struct made_failure){ eai, NO_DATA, 0 };
	case EAI_MEMORY:
		return (struct made_failure){ eai, NETDB_INTERNAL, ENOMEM };
	case EAI_SYSTEM:
		return (struct made_failure){ eai, NETDB_INTERNAL, ECONNREFUSED };
	default:
		return (struct made_failure){ eai, NO_RECOVERY, -1 };
	}
}

static void init_call(struct bw_call *c, const struct bw_rule *r, const char *call,
		      const char *name)
{
	bw_call_init(c, r, BW_OP_RESOLVE, call);
	c->host = name;
}

struct gai_args {
	struct bw_engine *e;
	const struct bw_call *c;
	const char *node, *service;
	const struct addrinfo *hints;
	struct addrinfo **res;
	int rc, err;             /* the return value and errno the program gets */
};

/* An injected resolver fault: the real lookup is not made. */
static int injected(struct bw_engine *e, const struct bw_call *c)
{
	struct bw_fault f;
	return c && bw_engine_inject(e, c, &f) ? f.err : 0;
}

/* A failure the policy made: glibc leaves *res alone when a lookup fails. */
static int gai_fail(void *arg, int code)
{
	struct gai_args *g = arg;
	struct made_failure m = made_failure(code);
	g->rc = m.eai;
	if (m.err >= 0)
		g->err = m.err;
	return code;
}

static int gai_attempt(void *arg, int n, int64_t deadline)
{
	struct gai_args *g = arg;
	(void)n, (void)deadline;
	int err = injected(g->e, g->c);
	if (err)
		return gai_fail(g, err);
	g->rc = BW_REAL(getaddrinfo)(g->node, g->service, g->hints, g->res);
	g->err = errno;
	return g->rc == 0 ? 0 : bw_err_eai(g->rc);
}

BW_HOOK int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	bw_reload_tick();
	struct bw_engine *e = bw_engine_for(BW_OP_RESOLVE);
	const struct bw_rule *r = e ? resolve_rule(e, node) : NULL;
	if (!r) {
		int rc = BW_REAL(getaddrinfo)(node, service, hints, res);
		if (rc == 0 && bw_tracking() && !bw_guarded())
			remember_ai(node, *res);
		return rc;
	}
	struct bw_call c;
	struct gai_args g = { e, &c, node, service, hints, res, 0, errno };
	init_call(&c, r, "getaddrinfo", node);
	c.attempt = gai_attempt;
	c.arg = &g;
	/* a refusal makes no attempt: without this the call would report the success of
	 * an attempt never made, and *res would be the caller's uninitialised pointer */
	c.refuse = gai_fail;
	bw_engine_run(e, &c, bw_thread_rng());
	if (g.rc == 0)
		remember_ai(node, *res);
	errno = g.err;   /* EAI_SYSTEM reports through errno */
	return g.rc;
}

struct ghbn_args {
	struct bw_engine *e;
	const struct bw_call *c;
	const char *name;
	int family;              /* 0: gethostbyname */
	struct hostent *he;
	int herr, err;           /* h_errno and errno the program gets */
};

/* A failure the policy made: no entry, h_errno and errno as after a real one. */
static int ghbn_fail(void *arg, int code)
{
	struct ghbn_args *g = arg;
	struct made_failure m = made_failure(code);
	g->he = NULL;
	g->herr = m.herr;
	g->err = m.err >= 0 ? m.err : ECONNREFUSED;
	return code;
}

static int ghbn_attempt(void *arg, int n, int64_t deadline)
{
	struct ghbn_args *g = arg;
	(void)n, (void)deadline;
	int err = injected(g->e, g->c);
	if (err)
		return ghbn_fail(g, err);
	g->he = g->family ? BW_REAL(gethostbyname2)(g->name, g->family)
			  : BW_REAL(gethostbyname)(g->name);
	g->herr = h_errno;
	g->err = errno;
	return g->he ? 0 : h_errno_code(g->herr);
}

static struct hostent *ghbn(const char *name, int family)
{
	bw_reload_tick();
	struct bw_engine *e = bw_engine_for(BW_OP_RESOLVE);
	const struct bw_rule *r = e ? resolve_rule(e, name) : NULL;
	if (!r) {
		struct hostent *he = family ? BW_REAL(gethostbyname2)(name, family)
					    : BW_REAL(gethostbyname)(name);
		if (bw_tracking() && !bw_guarded())
			remember_he(name, he);
		return he;
	}
	struct bw_call c;
	struct ghbn_args g = { e, &c, name, family, NULL, h_errno, errno };
	init_call(&c, r, family ? "gethostbyname2" : "gethostbyname", name);
	c.attempt = ghbn_attempt;
	c.arg = &g;
	c.refuse = ghbn_fail;
	bw_engine_run(e, &c, bw_thread_rng());
	remember_he(name, g.he);
	h_errno = g.herr;
	errno = g.err;
	return g.he;
}

BW_HOOK struct hostent *gethostbyname(const char *name)
{
	return ghbn(name, 0);
}

BW_HOOK struct hostent *gethostbyname2(const char *name, int family)
{
	return ghbn(name, family);
}

struct ghbnr_args {
	struct bw_engine *e;
	const struct bw_call *c;
	const char *name;
	struct hostent *ret;
	char *buf;
	size_t len;
	struct hostent **result;
	int *h_errnop;
	int rc, err;             /* the return value and errno the program gets */
};

/* A failure the policy made, reported as glibc reports a real one: no result, the
 * h_errno code, and a return value (also left in errno) of EAGAIN for a temporary
 * failure, 0 for a name that does not exist, the cause otherwise. */
static int ghbnr_fail(void *arg, int code)
{
	struct ghbnr_args *g = arg;
	struct made_failure m = made_failure(code);
	*g->result = NULL;
	*g->h_errnop = m.herr;
	g->rc = m.herr == HOST_NOT_FOUND || m.herr == NO_DATA ? 0
		: m.err > 0 ? m.err : ECONNREFUSED;
	g->err = g->rc;
	return code;
}

static int ghbnr_attempt(void *arg, int n, int64_t deadline)
{
	struct ghbnr_args *g = arg;
	(void)n, (void)deadline;
	int err = injected(g->e, g->c);
	if (err)
		return ghbnr_fail(g, err);
	g->rc = BW_REAL(gethostbyname_r)(g->name, g->ret, g->buf, g->len, g->result, g->h_errnop);
	g->err = errno;
	if (g->rc == 0 && *g->result)
		return 0;
	if (g->rc == ERANGE)
		return ERANGE;   /* the caller's buffer: not ours to retry */
	return h_errno_code(*g->h_errnop);
}

BW_HOOK int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t len,
		    struct hostent **result, int *h_errnop)
{
	bw_reload_tick();
	struct bw_engine *e = bw_engine_for(BW_OP_RESOLVE);
	const struct bw_rule *r = e ? resolve_rule(e, name) : NULL;
	if (!r) {
		int rc = BW_REAL(gethostbyname_r)(name, ret, buf, len, result, h_errnop);
		if (rc == 0 && bw_tracking() && !bw_guarded())
			remember_he(name, *result);
		return rc;
	}
	struct bw_call c;
	struct ghbnr_args g = { e, &c, name, ret, buf, len, result, h_errnop, 0, errno };
	init_call(&c, r, "gethostbyname_r", name);
	c.attempt = ghbnr_attempt;
	c.arg = &g;
	c.refuse = ghbnr_fail;
	bw_engine_run(e, &c, bw_thread_rng());
	if (g.rc == 0)
		remember_he(name, *result);
	errno = g.err;
	return g.rc;
}
