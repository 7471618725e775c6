/* Overrides from the environment and the command line, validated like the file's own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "overrides.h"

int bw_override_log(struct bw_config *cfg, const char *sink, char *err, size_t cap)
{
	if (!sink)
		return 0;
	if (strcmp(sink, "stderr") == 0) {
		cfg->log.sink = BW_SINK_STDERR;
	} else if (strcmp(sink, "syslog") == 0) {
		cfg->log.sink = BW_SINK_SYSLOG;
	} else if (strncmp(sink, "file:", 5) == 0 && sink[5]) {
		char *p = strdup(sink + 5);
		if (!p) {
			snprintf(err, cap, "out of memory");
			return -1;
		}
		free(cfg->log.path);
		cfg->log.path = p;
		cfg->log.sink = BW_SINK_FILE;
	} else {
		snprintf(err, cap, "log sink '%s': expected stderr, syslog or file:PATH", sink);
		return -1;
	}
	return 0;
}

int bw_override_level(struct bw_config *cfg, const char *level, char *err, size_t cap)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	if (!level)
		return 0;
	for (int i = 0; i < 4; i++) {
		if (strcmp(level, names[i]) == 0) {
			cfg->log.level = (enum bw_level)i;
			return 0;
		}
	}
	snprintf(err, cap, "log level '%s': expected error, warn, info or debug", level);
	return -1;
}

int bw_override_mode(struct bw_config *cfg, const char *mode, char *err, size_t cap)
{
	if (!mode)
		return 0;
	if (strcmp(mode, "observe") == 0)
		cfg->mode = BW_MODE_OBSERVE;
	else if (strcmp(mode, "enforce") == 0)
		cfg->mode = BW_MODE_ENFORCE;
	else {
		snprintf(err, cap, "mode '%s': expected observe or enforce", mode);
		return -1;
	}
	return 0;
}

int bw_override_seed(struct bw_config *cfg, const char *seed, char *err, size_t cap)
{
	if (!seed)
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(seed, &end, 10);
	if (!*seed || *end || errno || seed[0] == '-') {
		snprintf(err, cap, "seed '%s': expected an unsigned integer", seed);
		return -1;
	}
	cfg->seed = v;
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
					abort_it = strcmp(v, "abort") == 0;
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
