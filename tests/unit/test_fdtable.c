/* The descriptor table on its own (shim/fdtable.c, no preload): the packing of the hot
 * word, the pass-through test of the send and receive hooks for every combination of
 * kind, rule, watch and policy generation, and what dup, close, close_range and the
 * breaker's watch do to an entry. Descriptor numbers from FD up are table slots only:
 * nothing here needs them open, except where the kernel is asked. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>
#include "fdtable.h"

/* Defined by the library's init.c, which this test does not link. */
uint64_t bw_hot;

#define FD 3000                     /* a page of its own: FD / 1024 = 2 */
#define OPBIT 0x4u                  /* any op bit: the table does not interpret them */

static const struct { const char *name; int shift, bits; } fields[] = {
	{ "kind", 0, 2 },
	{ "family", BW_FDW_FAMILY, 6 },
	{ "type", BW_FDW_TYPE, 4 },
	{ "io_known", BW_FDW_IO_KNOWN, 1 },
	{ "send_rule", BW_FDW_SEND, BW_FDW_RULE_BITS },
	{ "recv_rule", BW_FDW_RECV, BW_FDW_RULE_BITS },
	{ "accept_rule", BW_FDW_ACCEPT, BW_FDW_RULE_BITS },
	{ "timeouts", BW_FDW_TIMEOUTS, 1 },
	{ "app_rcvtimeo", BW_FDW_APP_RCVTIMEO, 1 },
	{ "app_sndtimeo", BW_FDW_APP_SNDTIMEO, 1 },
	{ "watch", BW_FDW_WATCH, 1 },
	{ "gen", BW_FDW_GEN, BW_FDW_GEN_BITS },
};
#define NFIELDS (sizeof fields / sizeof fields[0])

/* Field i of an entry, by the order of the table above. */
static int *field(struct bw_fdinfo *i, size_t n)
{
	int *p[NFIELDS] = {
		(int *)&i->kind, &i->family, &i->type, &i->io_known, &i->send_rule,
		&i->recv_rule, &i->accept_rule, &i->timeouts, &i->app_rcvtimeo,
		&i->app_sndtimeo, &i->watch, (int *)&i->gen,
	};
	return p[n];
}

static uint64_t hot_gen(unsigned gen)
{
	return (uint64_t)gen << BW_FDW_GEN;
}

/* ---- the word ---- */

/* bw_fd_look as a yes/no, and what it hands on when the answer is no: the word itself
 * for a descriptor the table knows, BW_FDW_ASK for one never seen. */
static int pass(int fd, unsigned opbit, enum bw_fd_dir dir, int unknown)
{
	uint64_t w = bw_fd_look(fd, opbit, dir, unknown);
	if (w) {
		uint64_t known = bw_fd_word(fd);
		assert_true(w == (known ? known : BW_FDW_ASK));
	}
	return w == 0;
}

/* The fields tile the 64 bits in order, without gap or overlap. */
static void test_layout_tiles_the_word(void **st)
{
	(void)st;
	int next = 0;
	for (size_t i = 0; i < NFIELDS; i++) {
		assert_int_equal(fields[i].shift, next);
		next += fields[i].bits;
	}
	assert_int_equal(next, 64);
}

/* Each field alone at its largest value: it comes back, and no other field moves. */
static void test_each_field_alone(void **st)
{
	(void)st;
	for (size_t f = 0; f < NFIELDS; f++) {
		struct bw_fdinfo in, out;
		memset(&in, 0, sizeof in);
		int max = (int)((1u << fields[f].bits) - 1);
		*field(&in, f) = max;
		uint64_t w = bw_fd_pack(&in);
		assert_int_equal(w, (uint64_t)max << fields[f].shift);
		memset(&out, 0x55, sizeof out);
		bw_fd_unpack(w, &out);
		for (size_t g = 0; g < NFIELDS; g++)
			assert_int_equal(*field(&out, g), g == f ? max : 0);
	}
}

/* All fields at once, with values that differ from field to field. */
static void test_all_fields_round_trip(void **st)
{
	(void)st;
	struct bw_fdinfo in = {
		.kind = BW_FD_SOCKET, .family = AF_INET6, .type = SOCK_SEQPACKET, .io_known = 1,
		.send_rule = 4095, .recv_rule = 1234, .accept_rule = 2049, .timeouts = 1,
		.app_rcvtimeo = 0, .app_sndtimeo = 1, .watch = 1, .gen = 2047,
	};
	struct bw_fdinfo out;
	memset(&out, 0, sizeof out);
	bw_fd_unpack(bw_fd_pack(&in), &out);
	for (size_t f = 0; f < NFIELDS; f++)
		assert_int_equal(*field(&out, f), *field(&in, f));
	/* the word does not hold the key */
	in.key = 0x1234;
	assert_int_equal(bw_fd_pack(&in), bw_fd_pack(&out));
}

/* A value wider than its field is cut to the field: it never spills into the next. */
static void test_wide_values_stay_in_their_field(void **st)
{
	(void)st;
	for (size_t f = 0; f < NFIELDS; f++) {
		struct bw_fdinfo in, out;
		memset(&in, 0, sizeof in);
		int width = fields[f].bits;
		*field(&in, f) = (int)((1u << width) | 1u);   /* the bit just past the field */
		bw_fd_unpack(bw_fd_pack(&in), &out);
		for (size_t g = 0; g < NFIELDS; g++)
			assert_int_equal(*field(&out, g), g == f ? 1 : 0);
	}
}

/* ---- entries ---- */

static void test_never_seen_reads_unknown(void **st)
{
	(void)st;
	struct bw_fdinfo i;
	memset(&i, 0x55, sizeof i);
	bw_fd_get(FD + 7, &i);
	assert_int_equal(i.kind, BW_FD_UNKNOWN);
	assert_int_equal(i.key, 0);
	assert_int_equal(bw_fd_word(FD + 7), 0);
	assert_int_equal(bw_fd_word(-1), 0);
	assert_int_equal(bw_fd_word(BW_FD_MAX), 0);
	assert_int_equal(bw_fd_key(BW_FD_MAX + 5), 0);
}

static void test_put_get_with_key(void **st)
{
	(void)st;
	struct bw_fdinfo in = { .kind = BW_FD_SOCKET, .family = AF_INET, .type = SOCK_STREAM,
				.io_known = 1, .recv_rule = 3, .gen = 5,
				.key = 0xfeedfacecafebeefull };
	bw_fd_put(FD, &in);
	struct bw_fdinfo out;
	bw_fd_get(FD, &out);
	assert_int_equal(out.kind, BW_FD_SOCKET);
	assert_int_equal(out.recv_rule, 3);
	assert_int_equal(out.gen, 5);
	assert_int_equal(out.key, 0xfeedfacecafebeefull);
	assert_int_equal(bw_fd_key(FD), 0xfeedfacecafebeefull);
	assert_int_equal(bw_fd_word(FD), bw_fd_pack(&in));
	bw_fd_forget(FD);
}

/* Out of range: nothing is stored, nothing crashes. */
static void test_out_of_range_is_ignored(void **st)
{
	(void)st;
	struct bw_fdinfo in = { .kind = BW_FD_SOCKET, .key = 9 };
	int bad[] = { -1, -1000, BW_FD_MAX, BW_FD_MAX + 1 };
	bw_hot = BW_HOT_READY | BW_HOT_OPS;
	for (size_t n = 0; n < sizeof bad / sizeof bad[0]; n++) {
		bw_fd_put(bad[n], &in);
		bw_fd_set_socket(bad[n], AF_INET, SOCK_STREAM);
		bw_fd_watch(bad[n], 3, 0, 0);
		assert_int_equal(bw_fd_unwatch(bad[n], NULL), 0);
		bw_fd_copy(FD, bad[n]);
		bw_fd_copy(bad[n], FD);
		bw_fd_forget(bad[n]);
		struct bw_fdinfo out;
		bw_fd_get(bad[n], &out);
		assert_int_equal(out.kind, BW_FD_UNKNOWN);
		assert_int_equal(pass(bad[n], OPBIT, BW_FD_RECV, 0), 0);
	}
	bw_hot = 0;
}

/* The last descriptor the table tracks is tracked. */
static void test_last_slot(void **st)
{
	(void)st;
	bw_fd_set_other(BW_FD_MAX - 1);
	struct bw_fdinfo out;
	bw_fd_get(BW_FD_MAX - 1, &out);
	assert_int_equal(out.kind, BW_FD_OTHER);
	bw_fd_forget(BW_FD_MAX - 1);
	bw_fd_get(BW_FD_MAX - 1, &out);
	assert_int_equal(out.kind, BW_FD_UNKNOWN);
}

/* A new descriptor under an old number: nothing of the old one survives. */
static void test_set_socket_and_other_start_fresh(void **st)
{
	(void)st;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };
	struct bw_fdinfo in = { .kind = BW_FD_SOCKET, .io_known = 1, .send_rule = 2,
				.timeouts = 1, .key = 77 };
	bw_fd_put(FD, &in);
	bw_fd_watch(FD, 4, 0, 0);
	bw_fd_set_peer(FD, (struct sockaddr *)&sin, sizeof sin);

	bw_fd_set_socket(FD, AF_INET6, SOCK_DGRAM);
	struct bw_fdinfo out;
	bw_fd_get(FD, &out);
	assert_int_equal(out.kind, BW_FD_SOCKET);
	assert_int_equal(out.family, AF_INET6);
	assert_int_equal(out.type, SOCK_DGRAM);
	assert_int_equal(out.io_known, 0);
	assert_int_equal(out.send_rule, 0);
	assert_int_equal(out.timeouts, 0);
	assert_int_equal(out.watch, 0);
	assert_int_equal(out.key, 0);
	assert_int_equal(bw_fd_unwatch(FD, NULL), 0);
	struct sockaddr_storage ss;
	assert_int_equal(bw_fd_peer(FD, &ss), 0);

	bw_fd_put(FD, &in);
	bw_fd_watch(FD, 4, 0, 0);
	bw_fd_set_other(FD);
	bw_fd_get(FD, &out);
	assert_int_equal(out.kind, BW_FD_OTHER);
	assert_int_equal(bw_fd_word(FD), BW_FD_OTHER);
	assert_int_equal(out.key, 0);
	assert_int_equal(bw_fd_unwatch(FD, NULL), 0);
	bw_fd_forget(FD);
}

/* ---- the pass-through test ---- */

/* A socket entry whose rules were worked out under generation gen. */
static void put_socket(int fd, int send_rule, int recv_rule, int watch, unsigned gen)
{
	struct bw_fdinfo i = { .kind = BW_FD_SOCKET, .family = AF_INET, .type = SOCK_STREAM,
			       .io_known = 1, .send_rule = send_rule, .recv_rule = recv_rule,
			       .accept_rule = 9, .timeouts = 1, .app_rcvtimeo = 1,
			       .app_sndtimeo = 1, .watch = watch, .gen = gen };
	bw_fd_put(fd, &i);
}

/* No rule of the op in this process: every descriptor passes, whatever its entry. */
static void test_pass_when_op_uncovered(void **st)
{
	(void)st;
	put_socket(FD, 1, 1, 1, 0);
	bw_hot = BW_HOT_READY | (BW_HOT_OPS & ~OPBIT);
	for (int dir = 0; dir < 2; dir++)
		for (int unknown = 0; unknown < 2; unknown++) {
			assert_int_equal(pass(FD, OPBIT, dir, unknown), 1);
			assert_int_equal(pass(FD + 1, OPBIT, dir, unknown), 1);
			assert_int_equal(pass(-1, OPBIT, dir, unknown), 1);
		}
	bw_hot = 0;
	assert_int_equal(pass(FD, OPBIT, BW_FD_SEND, 0), 1);
	bw_fd_forget(FD);
}

/* Never seen, or out of range: the caller's answer for the unknown. Known not to be a
 * socket: pass. */
static void test_pass_unknown_and_other(void **st)
{
	(void)st;
	bw_hot = BW_HOT_READY | OPBIT;
	for (int dir = 0; dir < 2; dir++)
		for (int unknown = 0; unknown < 2; unknown++) {
			assert_int_equal(pass(FD + 2, OPBIT, dir, unknown), unknown);
			assert_int_equal(pass(BW_FD_MAX, OPBIT, dir, unknown), unknown);
			assert_int_equal(pass(-5, OPBIT, dir, unknown), unknown);
			/* a page never mapped */
			assert_int_equal(pass(BW_FD_MAX - 2000, OPBIT, dir, unknown), unknown);
		}
	bw_fd_set_other(FD);
	for (int dir = 0; dir < 2; dir++) {
		assert_int_equal(pass(FD, OPBIT, dir, 0), 1);
		assert_int_equal(pass(FD, OPBIT, dir, 1), 1);
	}
	/* a socket whose rules are not worked out yet is asked about */
	bw_fd_set_socket(FD, AF_INET, SOCK_STREAM);
	for (int dir = 0; dir < 2; dir++)
		assert_int_equal(pass(FD, OPBIT, dir, 1), 0);
	bw_fd_forget(FD);
	assert_int_equal(pass(FD, OPBIT, BW_FD_RECV, 1), 1);
	assert_int_equal(pass(FD, OPBIT, BW_FD_RECV, 0), 0);
	bw_hot = 0;
}

/* A socket whose rules are known: pass exactly when this direction has no rule, no
 * breaker watches the connection, and the rules were worked out under the policy
 * generation now loaded. Every combination, at a few generations including the
 * largest. */
static void test_pass_socket_combinations(void **st)
{
	(void)st;
	const unsigned gens[] = { 0, 1, 1024, (1u << BW_FDW_GEN_BITS) - 1 };
	for (size_t g = 0; g < 4; g++)
		for (size_t h = 0; h < 4; h++)
			for (int send = 0; send < 2; send++)
				for (int recv = 0; recv < 2; recv++)
					for (int watch = 0; watch < 2; watch++) {
		bw_hot = BW_HOT_READY | BW_HOT_OPS | hot_gen(gens[h]);
		put_socket(FD, send ? 4095 : 0, recv ? 17 : 0, watch, gens[g]);
		int same = g == h;
		assert_int_equal(pass(FD, OPBIT, BW_FD_SEND, 1), same && !send && !watch);
		assert_int_equal(pass(FD, OPBIT, BW_FD_RECV, 1), same && !recv && !watch);
		uint64_t w = bw_fd_word(FD);
		assert_int_equal(bw_fd_current(w, bw_hot), same);
		/* the unknown answer plays no part for a known socket */
		assert_int_equal(pass(FD, OPBIT, BW_FD_SEND, 0), same && !send && !watch);
	}
	bw_hot = 0;
	bw_fd_forget(FD);
}

/* Rules not worked out: asked about even when the word's rule fields are empty and the
 * generation matches; and the op bits and READY in the hot word are not a generation. */
static void test_pass_needs_io_known(void **st)
{
	(void)st;
	struct bw_fdinfo i = { .kind = BW_FD_SOCKET, .io_known = 0, .gen = 0 };
	bw_fd_put(FD, &i);
	bw_hot = BW_HOT_READY | BW_HOT_OPS;
	assert_int_equal(pass(FD, OPBIT, BW_FD_SEND, 1), 0);
	assert_int_equal(bw_fd_current(bw_fd_word(FD), bw_hot), 0);
	i.io_known = 1;
	bw_fd_put(FD, &i);
	assert_int_equal(pass(FD, OPBIT, BW_FD_SEND, 0), 1);
	assert_int_equal(bw_fd_current(bw_fd_word(FD), bw_hot), 1);
	/* the other fields of the word do not count */
	i.accept_rule = 5, i.timeouts = 1, i.app_rcvtimeo = 1, i.app_sndtimeo = 1;
	i.family = 63, i.type = 15;
	bw_fd_put(FD, &i);
	assert_int_equal(pass(FD, OPBIT, BW_FD_SEND, 0), 1);
	assert_int_equal(pass(FD, OPBIT, BW_FD_RECV, 0), 1);
	bw_hot = 0;
	bw_fd_forget(FD);
}

/* Generations wrap in the word: a socket learned BW_GENS loads ago would read as current
 * with another policy's rule numbers. Expiring its bits makes it learn again; words of
 * other generations, and entries with no rules worked out, are left as they are. */
static void test_wrapped_generation_expires(void **st)
{
	(void)st;
	assert_int_equal(bw_fd_gen(BW_GENS + 5), 5);
	struct bw_fdinfo old = { .kind = BW_FD_SOCKET, .io_known = 1, .send_rule = 7, .gen = 5 };
	struct bw_fdinfo other = { .kind = BW_FD_SOCKET, .io_known = 1, .send_rule = 2, .gen = 6 };
	struct bw_fdinfo fresh = { .kind = BW_FD_SOCKET, .gen = 5 };
	bw_fd_put(FD, &old);
	bw_fd_put(FD + 1, &other);
	bw_fd_put(FD + 2, &fresh);
	uint64_t w_other = bw_fd_word(FD + 1), w_fresh = bw_fd_word(FD + 2);
	assert_true(bw_fd_current_gen(bw_fd_word(FD), BW_GENS + 5));
	bw_fd_expire_gen(BW_GENS + 5);
	assert_false(bw_fd_current_gen(bw_fd_word(FD), BW_GENS + 5));
	struct bw_fdinfo got;
	bw_fd_get(FD, &got);
	assert_int_equal(got.kind, BW_FD_SOCKET);            /* still a socket, rules unknown */
	assert_int_equal(got.io_known, 0);
	assert_int_equal(bw_fd_word(FD + 1), w_other);
	assert_int_equal(bw_fd_word(FD + 2), w_fresh);
	for (int fd = FD; fd < FD + 3; fd++)
		bw_fd_forget(fd);
}

/* ---- dup, close, close_range ---- */

static void test_copy_is_the_same_socket(void **st)
{
	(void)st;
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	sin6.sin6_addr.s6_addr[15] = 1;
	put_socket(FD, 3, 0, 0, 7);
	struct bw_fdinfo i;
	bw_fd_get(FD, &i);
	i.key = 4242;
	bw_fd_put(FD, &i);
	bw_fd_watch(FD, 12, 0, 0);
	bw_fd_set_peer(FD, (struct sockaddr *)&sin6, sizeof sin6);

	bw_fd_set_other(FD + 1);        /* what the new number held before goes */
	bw_fd_copy(FD, FD + 1);
	assert_int_equal(bw_fd_word(FD + 1), bw_fd_word(FD));
	assert_int_equal(bw_fd_key(FD + 1), 4242);
	struct sockaddr_storage ss;
	assert_int_equal(bw_fd_peer(FD + 1, &ss), sizeof sin6);
	assert_memory_equal(&ss, &sin6, sizeof sin6);
	assert_int_equal(bw_fd_unwatch(FD + 1, NULL), 12);

	/* across pages, onto a page never mapped */
	bw_fd_copy(FD, 9000);
	assert_int_equal(bw_fd_word(9000), bw_fd_word(FD));
	assert_int_equal(bw_fd_key(9000), 4242);
	/* onto itself: unchanged */
	uint64_t before = bw_fd_word(FD);
	bw_fd_copy(FD, FD);
	assert_int_equal(bw_fd_word(FD), before);
	assert_int_equal(bw_fd_key(FD), 4242);

	bw_fd_forget(FD);
	bw_fd_forget(FD + 1);
	bw_fd_forget(9000);
}

/* A duplicate of a descriptor the table does not know is not known either. */
static void test_copy_of_unknown_forgets(void **st)
{
	(void)st;
	put_socket(FD + 1, 1, 1, 1, 0);
	bw_fd_watch(FD + 1, 3, 0, 0);
	bw_fd_copy(FD + 2, FD + 1);
	assert_int_equal(bw_fd_word(FD + 1), 0);
	assert_int_equal(bw_fd_key(FD + 1), 0);
	assert_int_equal(bw_fd_unwatch(FD + 1, NULL), 0);
	/* nor from a page never mapped */
	put_socket(FD + 1, 1, 1, 0, 0);
	bw_fd_copy(BW_FD_MAX - 3000, FD + 1);
	assert_int_equal(bw_fd_word(FD + 1), 0);
}

static void test_forget_clears_everything(void **st)
{
	(void)st;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(1) };
	put_socket(FD, 1, 2, 0, 3);
	bw_fd_watch(FD, 5, 0, 0);
	bw_fd_set_peer(FD, (struct sockaddr *)&sin, sizeof sin);
	struct bw_fdinfo i;
	bw_fd_get(FD, &i);
	i.key = 99;
	bw_fd_put(FD, &i);
	bw_fd_forget(FD);
	bw_fd_get(FD, &i);
	assert_int_equal(i.kind, BW_FD_UNKNOWN);
	assert_int_equal(i.key, 0);
	assert_int_equal(bw_fd_word(FD), 0);
	assert_int_equal(bw_fd_unwatch(FD, NULL), 0);
	struct sockaddr_storage ss;
	assert_int_equal(bw_fd_peer(FD, &ss), 0);
}

/* Forgetting never maps a page: an absent page already reads as unknown. */
static void test_forget_maps_nothing(void **st)
{
	(void)st;
	int page = (BW_FD_MAX >> BW_FD_PAGE_BITS) - 5;
	int fd = page << BW_FD_PAGE_BITS;
	assert_null(bw_fd_words[page]);
	assert_null(bw_fd_colds[page]);
	bw_fd_forget(fd + 3);
	bw_fd_forget_range((unsigned)fd, (unsigned)fd + 3 * (1u << BW_FD_PAGE_BITS));
	bw_fd_watch(fd + 4, 0, 0, 0);
	assert_int_equal(bw_fd_unwatch(fd + 4, NULL), 0);
	bw_fd_copy(fd + 5, fd + 6);
	assert_null(bw_fd_words[page]);
	assert_null(bw_fd_colds[page]);
	assert_null(bw_fd_words[page + 1]);
	assert_null(bw_fd_colds[page + 1]);
}

/* close_range: exactly lo..hi, both included, across pages mapped and not. */
static void test_forget_range(void **st)
{
	(void)st;
	const int fds[] = { 1023, 1024, 1025, 2047, 2048, 4100, 4101, 6000 };
	const size_t n = sizeof fds / sizeof fds[0];
	for (size_t k = 0; k < n; k++)
		bw_fd_set_other(fds[k]);
	bw_fd_forget_range(1024, 4100);
	for (size_t k = 0; k < n; k++) {
		int gone = fds[k] >= 1024 && fds[k] <= 4100;
		assert_int_equal(bw_fd_word(fds[k]), gone ? 0 : BW_FD_OTHER);
	}
	/* lo above hi: nothing */
	bw_fd_forget_range(6000, 5999);
	assert_int_equal(bw_fd_word(6000), BW_FD_OTHER);
	/* lo beyond the table: nothing */
	bw_fd_forget_range(BW_FD_MAX, ~0u);
	assert_int_equal(bw_fd_word(6000), BW_FD_OTHER);
	/* hi beyond the table (close_range(lo, ~0U)): up to the last slot */
	bw_fd_set_other(BW_FD_MAX - 1);
	bw_fd_forget_range(4101, ~0u);
	assert_int_equal(bw_fd_word(4101), 0);
	assert_int_equal(bw_fd_word(6000), 0);
	assert_int_equal(bw_fd_word(BW_FD_MAX - 1), 0);
	assert_int_equal(bw_fd_word(1023), BW_FD_OTHER);
	bw_fd_forget(1023);
}

/* ---- the breaker's watch ---- */

static void test_watch_unwatch_once(void **st)
{
	(void)st;
	bw_hot = BW_HOT_READY | BW_HOT_OPS;
	put_socket(FD, 0, 0, 0, 0);
	assert_int_equal(pass(FD, OPBIT, BW_FD_RECV, 0), 1);
	bw_fd_watch(FD, 7, 0, 0);
	struct bw_fdinfo i;
	bw_fd_get(FD, &i);
	assert_int_equal(i.watch, 1);
	assert_int_equal(pass(FD, OPBIT, BW_FD_RECV, 0), 0);
	assert_int_equal(pass(FD, OPBIT, BW_FD_SEND, 0), 0);
	assert_int_equal(bw_fd_unwatch(FD, NULL), 7);
	assert_int_equal(bw_fd_unwatch(FD, NULL), 0);           /* judged once */
	assert_int_equal(pass(FD, OPBIT, BW_FD_RECV, 0), 1);
	/* the rest of the word is left as it was */
	bw_fd_get(FD, &i);
	assert_int_equal(i.kind, BW_FD_SOCKET);
	assert_int_equal(i.io_known, 1);
	assert_int_equal(i.accept_rule, 9);

	/* watch(fd, 0) stops waiting without a verdict */
	bw_fd_watch(FD, 7, 0, 0);
	bw_fd_watch(FD, 0, 0, 0);
	assert_int_equal(bw_fd_unwatch(FD, NULL), 0);
	bw_fd_get(FD, &i);
	assert_int_equal(i.watch, 0);

	/* a watch on a descriptor never seen maps its entry: the watch is kept */
	bw_fd_watch(9500, 2, 0, 0);
	assert_int_equal(bw_fd_unwatch(9500, NULL), 2);
	bw_hot = 0;
	bw_fd_forget(FD);
	bw_fd_forget(9500);
}

#define RACERS 4
#define ROUNDS 2000

static int wins[RACERS];
static pthread_barrier_t start;

static void *unwatcher(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int r = 0; r < ROUNDS; r++) {
		pthread_barrier_wait(&start);
		if (bw_fd_unwatch(FD, NULL) == 11)
			wins[id]++;
		pthread_barrier_wait(&start);
	}
	return NULL;
}

/* Threads racing to judge one connection: exactly one of them gets it, every round. */
static void test_unwatch_race_has_one_winner(void **st)
{
	(void)st;
	pthread_t t[RACERS];
	pthread_barrier_init(&start, NULL, RACERS + 1);
	memset(wins, 0, sizeof wins);
	put_socket(FD, 0, 0, 0, 0);
	for (int i = 0; i < RACERS; i++)
		pthread_create(&t[i], NULL, unwatcher, (void *)(intptr_t)i);
	for (int r = 0; r < ROUNDS; r++) {
		bw_fd_watch(FD, 11, 0, 0);
		pthread_barrier_wait(&start);      /* go */
		pthread_barrier_wait(&start);      /* all tried */
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
	int total = 0;
	for (int i = 0; i < RACERS; i++)
		total += wins[i];
	assert_int_equal(total, ROUNDS);
	bw_fd_forget(FD);
}

/* ---- the peer ---- */

static void test_peer_kept_for_inet_only(void **st)
{
	(void)st;
	struct sockaddr_storage ss;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(8080) };
	sin.sin_addr.s_addr = htonl(0x7f000001);
	bw_fd_set_peer(FD, (struct sockaddr *)&sin, sizeof sin);
	assert_int_equal(bw_fd_peer(FD, &ss), sizeof sin);
	assert_memory_equal(&ss, &sin, sizeof sin);

	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(9),
				     .sin6_flowinfo = 0 };
	memset(&sin6.sin6_addr, 0xab, sizeof sin6.sin6_addr);
	bw_fd_set_peer(FD, (struct sockaddr *)&sin6, sizeof sin6);
	assert_int_equal(bw_fd_peer(FD, &ss), sizeof sin6);
	assert_memory_equal(&ss, &sin6, sizeof sin6);

	/* a short address, a unix one, none: no peer, and the old one is gone */
	bw_fd_set_peer(FD, (struct sockaddr *)&sin, sizeof sin - 1);
	assert_int_equal(bw_fd_peer(FD, &ss), 0);
	bw_fd_set_peer(FD, (struct sockaddr *)&sin6, sizeof sin6);
	struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = "/x" };
	bw_fd_set_peer(FD, (struct sockaddr *)&sun, sizeof sun);
	assert_int_equal(bw_fd_peer(FD, &ss), 0);
	bw_fd_set_peer(FD, (struct sockaddr *)&sin, sizeof sin);
	bw_fd_set_peer(FD, NULL, 0);
	assert_int_equal(bw_fd_peer(FD, &ss), 0);
	/* never seen */
	memset(&ss, 0x55, sizeof ss);
	assert_int_equal(bw_fd_peer(BW_FD_MAX - 1500, &ss), 0);
	assert_int_equal(ss.ss_family, 0);
	bw_fd_forget(FD);
}

/* ---- asking the kernel ---- */

static void test_classify_asks_the_kernel(void **st)
{
	(void)st;
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	int p[2];
	assert_true(s >= 0);
	assert_int_equal(pipe(p), 0);
	struct bw_fdinfo i;
	bw_fd_forget(s);
	bw_fd_forget(p[0]);
	assert_int_equal(bw_fd_classify(s, &i), BW_FD_SOCKET);
	assert_int_equal(i.family, AF_INET);
	assert_int_equal(i.type, SOCK_DGRAM);
	assert_int_equal(bw_fd_classify(p[0], &i), BW_FD_OTHER);
	/* known facts are not asked again: the number now holds a pipe, the entry says
	 * socket until close tells the table */
	close(s);
	assert_int_equal(dup2(p[0], s), s);
	assert_int_equal(bw_fd_classify(s, &i), BW_FD_SOCKET);
	bw_fd_forget(s);
	assert_int_equal(bw_fd_classify(s, &i), BW_FD_OTHER);
	/* a closed descriptor stays unknown, and errno is the caller's */
	close(s);
	bw_fd_forget(s);
	errno = 1234;
	assert_int_equal(bw_fd_classify(s, &i), BW_FD_UNKNOWN);
	assert_int_equal(errno, 1234);
	assert_int_equal(bw_fd_word(s), 0);
	close(p[0]);
	close(p[1]);
	bw_fd_forget(p[0]);
}

/* Descriptors inherited across exec: sockets and others are told apart, and the numbers
 * the process does not have stay unknown. */
static void test_scan_inherited(void **st)
{
	(void)st;
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	int f = open("/dev/null", O_RDONLY);
	assert_true(s >= 0 && f >= 0);
	int gap = f + 1;
	while (fcntl(gap, F_GETFD) >= 0)
		gap++;
	bw_fd_forget_range(0, 1023);
	errno = 4321;
	bw_fd_scan_inherited();
	assert_int_equal(errno, 4321);
	struct bw_fdinfo i;
	bw_fd_get(s, &i);
	assert_int_equal(i.kind, BW_FD_SOCKET);
	assert_int_equal(i.family, AF_UNIX);
	assert_int_equal(i.type, SOCK_STREAM);
	bw_fd_get(f, &i);
	assert_int_equal(i.kind, BW_FD_OTHER);
	bw_fd_get(gap, &i);
	assert_int_equal(i.kind, BW_FD_UNKNOWN);
	/* an entry already known is kept as it is */
	bw_fd_set_other(s);
	bw_fd_scan_inherited();
	bw_fd_get(s, &i);
	assert_int_equal(i.kind, BW_FD_OTHER);
	close(s);
	close(f);
	bw_fd_forget_range(0, 1023);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_tiles_the_word),
		cmocka_unit_test(test_each_field_alone),
		cmocka_unit_test(test_all_fields_round_trip),
		cmocka_unit_test(test_wide_values_stay_in_their_field),
		cmocka_unit_test(test_never_seen_reads_unknown),
		cmocka_unit_test(test_put_get_with_key),
		cmocka_unit_test(test_out_of_range_is_ignored),
		cmocka_unit_test(test_last_slot),
		cmocka_unit_test(test_set_socket_and_other_start_fresh),
		cmocka_unit_test(test_pass_when_op_uncovered),
		cmocka_unit_test(test_pass_unknown_and_other),
		cmocka_unit_test(test_pass_socket_combinations),
		cmocka_unit_test(test_pass_needs_io_known),
		cmocka_unit_test(test_wrapped_generation_expires),
		cmocka_unit_test(test_copy_is_the_same_socket),
		cmocka_unit_test(test_copy_of_unknown_forgets),
		cmocka_unit_test(test_forget_clears_everything),
		cmocka_unit_test(test_forget_maps_nothing),
		cmocka_unit_test(test_forget_range),
		cmocka_unit_test(test_watch_unwatch_once),
		cmocka_unit_test(test_unwatch_race_has_one_winner),
		cmocka_unit_test(test_peer_kept_for_inet_only),
		cmocka_unit_test(test_classify_asks_the_kernel),
		cmocka_unit_test(test_scan_inherited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
