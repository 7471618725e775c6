/* Name resolution: retry EAI_AGAIN (TRY_AGAIN for the old calls), and remember which
 * addresses each name gave so `dest: name:port` rules can match later connects. */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include "errnames.h"
#include "names.h"
#include "hook.h"
#include "real.h"
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

static void init_call(struct bw_call *c, const struct bw_rule *r, const char *call,
		      const char *name)
{
	memset(c, 0, sizeof *c);
	c->rule = r;
	c->op = BW_OP_RESOLVE;
	c->call = call;
	c->host = name;
	c->fd = -1;
}

struct gai_args {
	struct bw_engine *e;
	const struct bw_call *c;
	const char *node, *service;
	const struct addrinfo *hints;
	struct addrinfo **res;
	int rc, err;
};

/* An injected resolver fault: the real lookup is not made. */
static int injected(struct bw_engine *e, const struct bw_call *c)
{
	struct bw_fault f;
	if (!c || !bw_engine_inject(e, c, &f))
		return 0;
	if (f.delay)
		e->env.sleep_us(f.delay);
	return f.err;
}

static int gai_attempt(void *arg, int n, int64_t deadline)
{
	struct gai_args *g = arg;
	(void)n, (void)deadline;
	int err = injected(g->e, g->c);
	if (err) {
		g->rc = BW_ERR_EAI_BASE - err;
		g->err = 0;
		return err;
	}
	g->rc = BW_REAL(getaddrinfo)(g->node, g->service, g->hints, g->res);
	g->err = errno;
	return g->rc == 0 ? 0 : bw_err_eai(g->rc);
}

BW_HOOK int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	struct bw_engine *e = bw_engine_for(BW_OP_RESOLVE);
	const struct bw_rule *r = e ? resolve_rule(e, node) : NULL;
	if (!r) {
		int rc = BW_REAL(getaddrinfo)(node, service, hints, res);
		if (rc == 0 && bw_tracking() && !bw_guarded())
			remember_ai(node, *res);
		return rc;
	}
	struct bw_call c;
	struct gai_args g = { e, &c, node, service, hints, res, 0, 0 };
	init_call(&c, r, "getaddrinfo", node);
	c.attempt = gai_attempt;
	c.arg = &g;
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
};

static int ghbn_attempt(void *arg, int n, int64_t deadline)
{
	struct ghbn_args *g = arg;
	(void)n, (void)deadline;
	int err = injected(g->e, g->c);
	if (err) {
		g->he = NULL;
		h_errno = err == bw_err_eai(EAI_AGAIN) ? TRY_AGAIN : HOST_NOT_FOUND;
		return err;
	}
	g->he = g->family ? BW_REAL(gethostbyname2)(g->name, g->family)
			  : BW_REAL(gethostbyname)(g->name);
	return g->he ? 0 : h_errno_code(h_errno);
}

static struct hostent *ghbn(const char *name, int family)
{
	struct bw_engine *e = bw_engine_for(BW_OP_RESOLVE);
	const struct bw_rule *r = e ? resolve_rule(e, name) : NULL;
	struct bw_call c;
	struct ghbn_args g = { e, NULL, name, family, NULL };
	if (!r) {
		ghbn_attempt(&g, 1, 0);
		if (bw_tracking() && !bw_guarded())
			remember_he(name, g.he);
		return g.he;
	}
	init_call(&c, r, family ? "gethostbyname2" : "gethostbyname", name);
	g.c = &c;
	c.attempt = ghbn_attempt;
	c.arg = &g;
	int saved_h = 0;
	if (bw_engine_run(e, &c, bw_thread_rng()) != 0)
		saved_h = h_errno;
	remember_he(name, g.he);
	if (!g.he)
		h_errno = saved_h;
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
	int rc;
};

static int ghbnr_attempt(void *arg, int n, int64_t deadline)
{
	struct ghbnr_args *g = arg;
	(void)n, (void)deadline;
	int err = injected(g->e, g->c);
	if (err) {
		*g->result = NULL;
		*g->h_errnop = err == bw_err_eai(EAI_AGAIN) ? TRY_AGAIN : HOST_NOT_FOUND;
		g->rc = 0;
		return err;
	}
	g->rc = BW_REAL(gethostbyname_r)(g->name, g->ret, g->buf, g->len, g->result, g->h_errnop);
	if (g->rc == 0 && *g->result)
		return 0;
	if (g->rc == ERANGE)
		return ERANGE;   /* the caller's buffer: not ours to retry */
	return h_errno_code(*g->h_errnop);
}

BW_HOOK int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t len,
		    struct hostent **result, int *h_errnop)
{
	struct bw_engine *e = bw_engine_for(BW_OP_RESOLVE);
	const struct bw_rule *r = e ? resolve_rule(e, name) : NULL;
	struct bw_call c;
	struct ghbnr_args g = { e, NULL, name, ret, buf, len, result, h_errnop, 0 };
	if (!r) {
		g.rc = BW_REAL(gethostbyname_r)(name, ret, buf, len, result, h_errnop);
		if (g.rc == 0 && bw_tracking() && !bw_guarded())
			remember_he(name, *result);
		return g.rc;
	}
	init_call(&c, r, "gethostbyname_r", name);
	g.c = &c;
	c.attempt = ghbnr_attempt;
	c.arg = &g;
	bw_engine_run(e, &c, bw_thread_rng());
	if (g.rc == 0)
		remember_he(name, *result);
	return g.rc;
}
