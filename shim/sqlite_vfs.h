/* A VFS wrapped around the default one, so that SQLite faults and refusals happen at the
 * storage layer: a lock that reports busy is met by SQLite and the program exactly as a
 * real one, where a result code faked at the API would desynchronize them (SPEC 3.8,
 * PRELOAD-PITFALLS 32). */
#ifndef BW_SQLITE_VFS_H
#define BW_SQLITE_VFS_H

/* Register the wrapper as the default VFS (once). */
void bw_sq_vfs_install(void);

/* While set on this thread, every lock the statement asks for reports SQLITE_BUSY. */
void bw_sq_refuse_locks(int on);

/* One injected fault for this thread's next storage operation that can meet it: a busy or
 * locked code on the next lock, an I/O or full-disk code on the next read or write. 0
 * clears it. */
void bw_sq_inject_fault(int sqlite_code);

#endif
