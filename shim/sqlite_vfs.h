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

#endif
