/* Settings that the environment or `bulwark run` options put over the policy file:
 * BULWARK_LOG, BULWARK_LEVEL, BULWARK_MODE, BULWARK_SEED. */
#ifndef BW_OVERRIDES_H
#define BW_OVERRIDES_H

#include <stddef.h>
#include "config.h"

/* Each NULL value leaves the policy's own setting. A value is read as the policy file's
 * would be (units.h), so that both take the same words. Returns 0, or -1 with the loader's
 * message under the key the value stands in for ("log.level: expected one of error, warn,
 * info, debug, got 'loud'"); cfg is unchanged for a value that was refused. A new sink
 * brings its own level (bw_level_for_sink) unless a level was given. */
int bw_override_log(struct bw_config *cfg, const char *sink, char *err, size_t cap);
int bw_override_level(struct bw_config *cfg, const char *level, char *err, size_t cap);
int bw_override_mode(struct bw_config *cfg, const char *mode, char *err, size_t cap);
int bw_override_seed(struct bw_config *cfg, const char *seed, char *err, size_t cap);

/* 1 when the file says `on_config_error: abort` at top level, even if the file is
 * otherwise invalid: the library must honour it when the policy fails to load. */
int bw_config_wants_abort(const char *path);

#endif
