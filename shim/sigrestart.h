/* Would the kernel restart a call that a signal handler interrupted? */
#ifndef BW_SIGRESTART_H
#define BW_SIGRESTART_H

/* 1 when every signal handler the program has installed carries SA_RESTART. A wait of
 * ours (poll, nanosleep) that a handler interrupted cannot tell which signal it was, so
 * with handlers of both kinds this says 0 and the call returns EINTR: a program with any
 * handler that does not restart must handle EINTR on these calls anyway. Asked only after
 * an interruption, never on the way of a call. Async-signal-safe. */
int bw_sig_restarts(void);

#endif
