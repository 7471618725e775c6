/* `bulwark run`: validate everything, hand the policy to the library through the
 * environment, then become a transparent parent of the command. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "clock.h"
#include "shared.h"
#include "elfkind.h"
#include "overrides.h"
#include "paths.h"
#include "run.h"
#include "units.h"
#include "vocab.h"

/* What the library reads from the environment over the policy file, and the option of
 * ours that sets each. Checked here with the library's own parsers, whether the value comes
 * from the option or was already in the environment, so that a typo stops the run instead
 * of becoming a config_error event in every process of the tree. */
enum { OV_LOG, OV_LEVEL, OV_MODE, OV_SEED, OV_COUNT };

static const struct {
	const char *env, *option;
	int (*check)(struct bw_config *cfg, const char *value, char *err, size_t cap);
} overrides[OV_COUNT] = {
	[OV_LOG] = { "BULWARK_LOG", "--log", bw_override_log },
	[OV_LEVEL] = { "BULWARK_LEVEL", "--level", bw_override_level },
	[OV_MODE] = { "BULWARK_MODE", "--observe", bw_override_mode },
	[OV_SEED] = { "BULWARK_SEED", "--seed", bw_override_seed },
};

struct run_opts {
	const char *config;
	int quiet;                     /* -q: no notes or warnings of our own, errors only */
	const char *value[OV_COUNT];   /* from our options; NULL: not given */
};

enum { OPT_OBSERVE = 256, OPT_SEED };

static const struct option run_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "log", required_argument, NULL, 'o' },
	{ "level", required_argument, NULL, 'l' },
	{ "observe", no_argument, NULL, OPT_OBSERVE },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int parse_options(int argc, char **argv, struct run_opts *o)
{
	int c;
	optind = 0;
	/* '+': stop at COMMAND, whose own options are none of ours (`bulwark run curl -s x`). */
	while ((c = getopt_long(argc, argv, "+:c:o:l:qh", run_options, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'o': o->value[OV_LOG] = optarg; break;
		case 'l': o->value[OV_LEVEL] = optarg; break;
		case OPT_OBSERVE: o->value[OV_MODE] = bw_mode_names[BW_MODE_OBSERVE]; break;
		case OPT_SEED: o->value[OV_SEED] = optarg; break;
		case 'q': o->quiet = 1; break;
		case 'h': bw_usage(stdout); exit(0);
		default: bw_option_error("run", argv, c); return -1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "bulwark run: COMMAND is missing (see bulwark --help)\n");
		return -1;
	}
	return optind;
}

/* A sink file is opened by every process of the tree, each in its own working directory:
 * only an absolute path names the same file for all of them. The sink has been checked. */
static int absolute_sink(const char *sink, char *out, size_t cap)
{
	enum bw_sink_kind kind;
	const char *path;
	char err[8];
	int n;
	if (bw_parse_sink(sink, &kind, &path, err, sizeof err) < 0 || !path)
		return snprintf(out, cap, "%s", sink) < (int)cap ? 0 : -1;
	n = snprintf(out, cap, "%.*s", (int)(path - sink), sink);   /* "file:" */
	return n < (int)cap ? bw_abs_path(path, out + n, cap - (size_t)n) : -1;
}

static int set_overrides(struct bw_config *cfg, const struct run_opts *o)
{
	char err[256], sink[PATH_MAX + 8];
	for (int i = 0; i < OV_COUNT; i++) {
		const char *v = o->value[i] ? o->value[i] : getenv(overrides[i].env);
		const char *from = o->value[i] ? overrides[i].option : overrides[i].env;
		if (!v)
			continue;
		if (overrides[i].check(cfg, v, err, sizeof err) < 0) {
			fprintf(stderr, "bulwark run: %s: %s\n", from, err);
			return -1;
		}
		if (i == OV_LOG && o->value[i]) {
			if (absolute_sink(v, sink, sizeof sink) < 0) {
				fprintf(stderr, "bulwark run: %s %s: path too long\n", from, v);
				return -1;
			}
			v = sink;
		}
		if (o->value[i] && setenv(overrides[i].env, v, 1) < 0)
			return -1;
	}
	return 0;
}

/* The library reloads the policy in every process of the tree, whatever its working
 * directory: it gets the path absolute, or nothing for the built-in default. */
static int set_policy(const char *path)
{
	char abs[PATH_MAX];
	if (!path)
		return unsetenv("BULWARK_CONFIG");
	if (bw_abs_path(path, abs, sizeof abs) < 0) {
		fprintf(stderr, "bulwark run: %s: cannot make the path absolute\n", path);
		return -1;
	}
	return setenv("BULWARK_CONFIG", abs, 1);
}

static int set_preload(void)
{
	char lib[PATH_MAX];
	if (bw_find_library(lib, sizeof lib) < 0)
		return -1;
	char *list = bw_preload_list(lib, getenv("LD_PRELOAD"));
	int rc = list ? setenv("LD_PRELOAD", list, 1) : -1;
	free(list);
	return rc;
}

/* The loader ignores LD_PRELOAD for a program that gains privileges (AT_SECURE). */
static int gains_privileges(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	return ((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
	       ((st.st_mode & S_ISGID) && st.st_gid != getegid());
}

/* Said once, before the command runs, because afterwards nothing else will: an
 * uninterposed program simply produces no events. */
static void warn_unreachable(const char *cmd)
{
	char path[PATH_MAX];
	if (bw_path_search(cmd, path, sizeof path) < 0)
		return;
	switch (bw_exe_kind(path)) {
	case BW_EXE_STATIC:
		fprintf(stderr, "bulwark: warning: %s is statically linked: LD_PRELOAD cannot "
			"reach it; bulwark will change nothing\n", cmd);
		return;
	case BW_EXE_GO:
		fprintf(stderr, "bulwark: warning: %s is a Go program: Go makes its socket calls "
			"without libc, so bulwark can see only its cgo name resolution\n", cmd);
		return;
	default:
		break;
	}
	if (gains_privileges(path))
		fprintf(stderr, "bulwark: warning: %s is set-user-ID or set-group-ID: the loader "
			"ignores LD_PRELOAD for it; bulwark will change nothing\n", cmd);
}

/* One group per `bulwark run`: every process of the tree shares breakers and buckets in
 * <state dir>/<group>.state, which is removed when the command ends. */
static int name_group(const struct bw_config *cfg, char *state, size_t cap)
{
	char group[BW_GROUP_MAX + 1], dir[PATH_MAX];
	snprintf(group, sizeof group, "run-%ld-%lld", (long)getpid(),
		 (long long)bw_clock_us(CLOCK_REALTIME));
	/* a directory too long to share state in leaves each process its own, and nothing
	 * to remove at the end */
	if (bw_state_dir(cfg, getenv("XDG_RUNTIME_DIR"), (unsigned)getuid(), dir, sizeof dir) < 0 ||
	    bw_state_path(dir, group, state, cap) < 0)
		state[0] = '\0';
	return setenv("BULWARK_GROUP", group, 1);
}

/* Fleet mode's files beside the state file: the leader's lock and its status. */
static void unlink_fleet_files(const char *state)
{
	char path[PATH_MAX + 16];
	size_t n = strlen(state) - (sizeof BW_STATE_SUFFIX - 1);
	snprintf(path, sizeof path, "%.*s.fleet", (int)n, state);
	unlink(path);
	snprintf(path, sizeof path, "%.*s.fleet.lock", (int)n, state);
	unlink(path);
}

int bw_cmd_run(int argc, char **argv)
{
	struct run_opts o = { 0 };
	int first = parse_options(argc, argv, &o);
	if (first < 0)
		return BW_EXIT_USAGE;

	struct bw_policy_src src;
	const char *path = bw_policy_find(o.config, &src);
	struct bw_config *cfg = bw_policy_load(path);
	if (!cfg)
		return BW_EXIT_USAGE;
	int rc = set_overrides(cfg, &o);
	int cfg_share = cfg->state.share;
	char state[PATH_MAX] = "";
	if (rc == 0 && cfg->state.share >= BW_SHARE_GROUP)
		rc = name_group(cfg, state, sizeof state);
	bw_config_free(cfg);

	if (rc < 0 || set_policy(path) < 0 || set_preload() < 0)
		return BW_EXIT_USAGE;
	if (!o.quiet) {
		/* a ./bulwark.yaml left behind must not change a run unnoticed */
		bw_policy_say("bulwark", &src, 0);
		warn_unreachable(argv[first]);
	}
	int status = bw_spawn_wait(argv + first);
	/* the tree has ended: its shared state goes with it */
	if (state[0])
		unlink(state);
	if (state[0] && cfg_share == BW_SHARE_FLEET)
		unlink_fleet_files(state);
	return status;
}
