/* Overrides from the environment and the command line, validated like the file's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "overrides.h"
#include "units.h"
#include "vocab.h"

/* Each message names the policy key the value stands in for, in the loader's words. */

int bw_override_log(struct bw_config *cfg, const char *sink, char *err, size_t cap)
{
	enum bw_sink_kind kind;
	const char *path;
	char why[160], *copy = NULL;
	if (!sink)
		return 0;
	if (bw_parse_sink(sink, &kind, &path, why, sizeof why) < 0)
		return bw_fail(err, cap, "log.sink: %s", why);
	if (path && !(copy = strdup(path)))
		return bw_fail(err, cap, "out of memory");
	free(cfg->log.path);
	cfg->log.path = copy;
	cfg->log.sink = kind;
	bw_log_settle(&cfg->log);
	return 0;
}

int bw_override_level(struct bw_config *cfg, const char *level, char *err, size_t cap)
{
	char why[256];
	int i;
	if (!level)
		return 0;
	if (bw_parse_name(level, bw_level_names, &i, why, sizeof why) < 0)
		return bw_fail(err, cap, "log.level: %s", why);
	cfg->log.level = (enum bw_level)i;
	cfg->log.level_given = 1;
	return 0;
}

int bw_override_mode(struct bw_config *cfg, const char *mode, char *err, size_t cap)
{
	char why[256];
	int i;
	if (!mode)
		return 0;
	if (bw_parse_name(mode, bw_mode_names, &i, why, sizeof why) < 0)
		return bw_fail(err, cap, "mode: %s", why);
	cfg->mode = (enum bw_mode)i;
	return 0;
}

int bw_override_seed(struct bw_config *cfg, const char *seed, char *err, size_t cap)
{
	char why[160];
	if (!seed)
		return 0;
	if (bw_parse_seed(seed, &cfg->seed, why, sizeof why) < 0)
		return bw_fail(err, cap, "seed: %s", why);
	return 0;
}

struct capped {
	FILE *f;
	size_t left;
};

static int read_capped(void *data, unsigned char *buf, size_t size, size_t *n)
{
	struct capped *c = data;
	*n = fread(buf, 1, size < c->left ? size : c->left, c->f);
	c->left -= *n;
	return !ferror(c->f);
}

/* Walk only the top-level mapping's events; any parse error ends the walk, and so do the
 * loader's bounds on size and nesting: libyaml's time per token grows with the depth. */
int bw_config_wants_abort(const char *path)
{
	FILE *f = path ? fopen(path, "re") : NULL;
	if (!f)
		return 0;
	struct capped in = { f, BW_POLICY_MAX_BYTES };
	yaml_parser_t p;
	yaml_event_t ev;
	int depth = 0, want_value = 0, is_key = 1, abort_it = 0, done = 0;
	if (!yaml_parser_initialize(&p)) {
		fclose(f);
		return 0;
	}
	yaml_parser_set_input(&p, read_capped, &in);
	while (!done && yaml_parser_parse(&p, &ev)) {
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (depth == 1)
				is_key = !is_key;
			done = ++depth > BW_POLICY_MAX_DEPTH;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			depth--;
			break;
		case YAML_SCALAR_EVENT:
			if (depth == 1) {
				const char *v = (const char *)ev.data.scalar.value;
				if (is_key)
					want_value = strcmp(v, "on_config_error") == 0;
				else if (want_value)
					abort_it = strcmp(v, bw_onerr_names[BW_ONERR_ABORT]) == 0;
				is_key = !is_key;
			}
			break;
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	fclose(f);
	return abort_it;
}
