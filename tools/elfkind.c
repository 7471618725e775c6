/* Reads just enough of an ELF file to tell whether LD_PRELOAD can reach it: the program
 * headers (PT_INTERP means ld.so runs, and ld.so is what reads LD_PRELOAD) and the section
 * names and notes that mark a Go binary. Every offset comes from the file, so every read is
 * bounded and checked: a corrupt file must give BW_EXE_UNKNOWN, never a crash. */
#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "elfkind.h"

/* Limits no real executable reaches; past them the file is treated as unknown. */
#define MAX_HEADERS 65536
#define MAX_TABLE (16u << 20)

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_DATA ELFDATA2LSB
#else
#define NATIVE_DATA ELFDATA2MSB
#endif

/* Go's linker writes its build ID as a note with this owner and type. */
#define GO_NOTE_OWNER "Go"
#define GO_NOTE_BUILDID 4

/* The fields we need, from either ELF class. */
struct elf_file {
	int fd;
	int is64;
	uint64_t phoff, shoff;
	unsigned phentsize, phnum, shentsize, shnum, shstrndx;
};

struct segment {
	uint32_t type;
	uint64_t offset, filesz, align;
};

struct section {
	uint32_t name;
	uint64_t offset, size, link, info;
};

static int read_at(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

static void *read_table(int fd, uint64_t off, uint64_t size)
{
	if (size == 0 || size > MAX_TABLE)
		return NULL;
	void *p = malloc(size);
	if (p && read_at(fd, p, size, off) < 0) {
		free(p);
		return NULL;
	}
	return p;
}

static int get_segment(const struct elf_file *f, unsigned i, struct segment *s)
{
	uint64_t off = f->phoff + (uint64_t)i * f->phentsize;
	if (f->is64) {
		Elf64_Phdr p;
		if (f->phentsize < sizeof p || read_at(f->fd, &p, sizeof p, off) < 0)
			return -1;
		*s = (struct segment){ p.p_type, p.p_offset, p.p_filesz, p.p_align };
	} else {
		Elf32_Phdr p;
		if (f->phentsize < sizeof p || read_at(f->fd, &p, sizeof p, off) < 0)
			return -1;
		*s = (struct segment){ p.p_type, p.p_offset, p.p_filesz, p.p_align };
	}
	return 0;
}

static int get_section(const struct elf_file *f, unsigned i, struct section *s)
{
	uint64_t off = f->shoff + (uint64_t)i * f->shentsize;
	if (f->is64) {
		Elf64_Shdr h;
		if (f->shentsize < sizeof h || read_at(f->fd, &h, sizeof h, off) < 0)
			return -1;
		*s = (struct section){ h.sh_name, h.sh_offset, h.sh_size, h.sh_link, h.sh_info };
	} else {
		Elf32_Shdr h;
		if (f->shentsize < sizeof h || read_at(f->fd, &h, sizeof h, off) < 0)
			return -1;
		*s = (struct section){ h.sh_name, h.sh_offset, h.sh_size, h.sh_link, h.sh_info };
	}
	return 0;
}

/* Only native byte order is read: a foreign-endian binary cannot be run here anyway. */
static int open_elf(struct elf_file *f, const unsigned char *id)
{
	union {
		Elf64_Ehdr e64;
		Elf32_Ehdr e32;
	} h;
	if (id[EI_DATA] != NATIVE_DATA)
		return -1;
	f->is64 = id[EI_CLASS] == ELFCLASS64;
	if (!f->is64 && id[EI_CLASS] != ELFCLASS32)
		return -1;
	if (read_at(f->fd, &h, f->is64 ? sizeof h.e64 : sizeof h.e32, 0) < 0)
		return -1;
	if (f->is64) {
		f->phoff = h.e64.e_phoff, f->shoff = h.e64.e_shoff;
		f->phentsize = h.e64.e_phentsize, f->phnum = h.e64.e_phnum;
		f->shentsize = h.e64.e_shentsize, f->shnum = h.e64.e_shnum;
		f->shstrndx = h.e64.e_shstrndx;
	} else {
		f->phoff = h.e32.e_phoff, f->shoff = h.e32.e_shoff;
		f->phentsize = h.e32.e_phentsize, f->phnum = h.e32.e_phnum;
		f->shentsize = h.e32.e_shentsize, f->shnum = h.e32.e_shnum;
		f->shstrndx = h.e32.e_shstrndx;
	}
	/* Counts too large for the header live in section 0 (the ELF extended numbering). */
	struct section s0;
	int have_s0 = f->shoff && get_section(f, 0, &s0) == 0;
	if (f->phnum == PN_XNUM)
		f->phnum = have_s0 && s0.info < MAX_HEADERS ? (unsigned)s0.info : 0;
	if (f->shnum == 0)
		f->shnum = have_s0 && s0.size < MAX_HEADERS ? (unsigned)s0.size : 0;
	if (f->shstrndx == SHN_XINDEX)
		f->shstrndx = have_s0 && s0.link < MAX_HEADERS ? (unsigned)s0.link : 0;
	return 0;
}

static int has_go_note(const struct elf_file *f, const struct segment *seg)
{
	unsigned char *notes = read_table(f->fd, seg->offset, seg->filesz);
	/* Notes are padded to the segment's alignment: 4, or 8 for GNU property notes. */
	uint64_t pad = seg->align == 8 ? 7 : 3;
	int found = 0;
	for (uint64_t o = 0; notes && !found && o + 12 <= seg->filesz;) {
		uint32_t w[3];
		memcpy(w, notes + o, sizeof w);
		uint64_t name = o + 12, desc = (name + w[0] + pad) & ~pad;
		uint64_t next = (desc + w[1] + pad) & ~pad;
		if (next > seg->filesz)
			break;
		found = w[2] == GO_NOTE_BUILDID && w[0] == sizeof GO_NOTE_OWNER &&
			memcmp(notes + name, GO_NOTE_OWNER, sizeof GO_NOTE_OWNER) == 0;
		o = next;
	}
	free(notes);
	return found;
}

static int has_go_section(const struct elf_file *f)
{
	struct section strtab, s;
	if (f->shnum == 0 || f->shstrndx >= f->shnum || get_section(f, f->shstrndx, &strtab) < 0)
		return 0;
	char *names = read_table(f->fd, strtab.offset, strtab.size);
	int found = 0;
	for (unsigned i = 0; names && !found && i < f->shnum && i < MAX_HEADERS; i++) {
		if (get_section(f, i, &s) < 0 || s.name >= strtab.size)
			continue;
		const char *n = names + s.name;
		size_t room = strtab.size - s.name;
		found = strnlen(n, room) < room &&
			(strcmp(n, ".go.buildinfo") == 0 || strcmp(n, ".note.go.buildid") == 0);
	}
	free(names);
	return found;
}

static enum bw_exe_kind classify(struct elf_file *f)
{
	int interp = 0, go = 0;
	struct segment seg;
	for (unsigned i = 0; i < f->phnum && i < MAX_HEADERS; i++) {
		if (get_segment(f, i, &seg) < 0)
			return BW_EXE_UNKNOWN;
		if (seg.type == PT_INTERP)
			interp = 1;
		/* The note survives a stripped section table; the section names are the
		 * fallback for linkers that leave the note out of a PT_NOTE segment. */
		else if (seg.type == PT_NOTE && !go)
			go = has_go_note(f, &seg);
	}
	if (f->phnum == 0)
		return BW_EXE_UNKNOWN;
	if (!interp)
		return BW_EXE_STATIC;
	return go || has_go_section(f) ? BW_EXE_GO : BW_EXE_DYNAMIC;
}

enum bw_exe_kind bw_exe_kind(const char *path)
{
	struct elf_file f = { .fd = open(path, O_RDONLY | O_CLOEXEC) };
	unsigned char id[EI_NIDENT];
	enum bw_exe_kind kind = BW_EXE_UNKNOWN;
	if (f.fd < 0)
		return kind;
	if (read_at(f.fd, id, 2, 0) == 0 && id[0] == '#' && id[1] == '!')
		kind = BW_EXE_SCRIPT;
	else if (read_at(f.fd, id, sizeof id, 0) == 0 && memcmp(id, ELFMAG, SELFMAG) == 0 &&
		 open_elf(&f, id) == 0)
		kind = classify(&f);
	close(f.fd);
	return kind;
}
