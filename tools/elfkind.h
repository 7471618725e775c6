/* What an executable is, as far as LD_PRELOAD is concerned. */
#ifndef BW_ELFKIND_H
#define BW_ELFKIND_H

enum bw_exe_kind {
	BW_EXE_UNKNOWN,   /* unreadable, or neither ELF nor a script: nothing to say */
	BW_EXE_SCRIPT,    /* #!: its interpreter is what the loader starts */
	BW_EXE_DYNAMIC,   /* has an ELF interpreter (ld.so), which honours LD_PRELOAD */
	BW_EXE_STATIC,    /* no ELF interpreter: nothing can be preloaded */
	BW_EXE_GO         /* dynamic, but Go: its sockets bypass libc */
};

enum bw_exe_kind bw_exe_kind(const char *path);

#endif
