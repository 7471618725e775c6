/* Per-thread re-entrancy guard: while set, every hook passes straight through. It keeps our
 * own work (loading the policy, logging) out of our hooks. volatile: glibc marks dlsym and
 * friends __leaf__, and GCC then drops a plain store made just before them
 * (docs/design.md, H2). */
#ifndef BW_GUARD_H
#define BW_GUARD_H

extern __thread volatile int bw_guard_depth __attribute__((tls_model("initial-exec")));

static inline int bw_guarded(void) { return bw_guard_depth != 0; }
static inline void bw_guard_enter(void) { bw_guard_depth++; }
static inline void bw_guard_leave(void) { bw_guard_depth--; }

#endif
