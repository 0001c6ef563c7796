/*
 * Linked into our self-contained libbpf shared object, built from Debian's static archives.
 *
 * Two objects in those archives cannot go into a shared object as they are:
 *  - libbpf.o refers to glibc's `stderr` with a PC-relative (non-PIC) relocation, so we give
 *    it a hidden `stderr` of our own, bound at link time and opened when the object loads;
 *  - libelf's elf_error.o keeps its error in local-exec TLS, so we replace it with a
 *    PIC equivalent (messages are generic: libbpf's own log text names the failing step).
 */
typedef struct _IO_FILE FILE;
extern FILE *fdopen(int fd, const char *mode);

__attribute__((visibility("hidden"))) FILE *stderr;

__attribute__((constructor)) static void open_stderr(void)
{
	stderr = fdopen(2, "w");
}

static __thread int last_elf_error;

int elf_errno(void)
{
	int error = last_elf_error;

	last_elf_error = 0;
	return error;
}

void __libelf_seterrno(int value)
{
	last_elf_error = value;
}

const char *elf_errmsg(int error)
{
	(void)error;
	return "libelf error";
}
