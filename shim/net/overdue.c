/* The list of overdue.h: a fixed table claimed by compare-and-swap, no lock and no
 * allocation. An entry holds fd + 1; 0 is free. */
#include <errno.h>
#include <stddef.h>
#include "fdtable.h"
#include "overdue.h"
#include "sockio.h"

#define OVERDUE_FDS 256      /* connections waiting for an answer at once, per process */

static int fds[OVERDUE_FDS];
static int listed;           /* entries in use: the scan is skipped while none is */

void bw_overdue_add(int fd)
{
	if (fd < 0)
		return;
	for (int i = 0; i < OVERDUE_FDS; i++) {
		int free_ = 0;
		if (__atomic_load_n(&fds[i], __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&fds[i], &free_, fd + 1, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			__atomic_add_fetch(&listed, 1, __ATOMIC_RELAXED);
			return;
		}
	}
}

static void drop(int i, int v)
{
	if (__atomic_compare_exchange_n(&fds[i], &v, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		__atomic_sub_fetch(&listed, 1, __ATOMIC_RELAXED);
}

void bw_overdue_scan(struct bw_engine *e)
{
	if (!__atomic_load_n(&listed, __ATOMIC_RELAXED))
		return;
	int saved = errno;
	for (int i = 0; i < OVERDUE_FDS; i++) {
		int v = __atomic_load_n(&fds[i], __ATOMIC_ACQUIRE);
		if (!v)
			continue;
		int fd = v - 1;
		uint64_t w = bw_fd_word(fd);
		struct bw_fd_cold *c = bw_fd_cold_of(fd);
		/* no longer watched (judged, closed), or watched under another policy */
		if (!(w & BW_FDW_BIT(BW_FDW_WATCH)) || !c || !bw_fd_current_gen(w, e->gen)) {
			drop(i, v);
			continue;
		}
		int rule = __atomic_load_n(&c->watch_rule, __ATOMIC_RELAXED);
		int flags;
		int64_t t0 = bw_fd_watch_t0(fd, &flags);
		/* only a connection the program asked something of is waiting for an answer:
		 * an idle one (a pool's) is not slow, its server has nothing to say yet */
		if (rule < 1 || rule > e->cfg->n_rules || !(flags & BW_WATCH_SENT) ||
		    !bw_engine_overdue(e, &e->cfg->rules[rule - 1], t0))
			continue;
		int no = bw_fd_unwatch(fd, NULL);
		drop(i, v);
		if (!no)
			continue;            /* its answer came meanwhile: judged there */
		struct bw_call call = {
			.rule = &e->cfg->rules[no - 1], .op = BW_OP_CONNECT, .call = "connect",
			.fd = fd, .dest_of = bw_sock_peer_name, .slow = 1,
		};
		call.key = bw_fd_key(fd);
		bw_engine_confirm(e, &call, 0);
	}
	errno = saved;
}
