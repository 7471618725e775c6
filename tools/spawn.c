/* Runs the command as a child and waits for it like a shell would, with bulwark itself
 * as transparent as possible: signals meant for it go to the child, and the child's fate
 * becomes bulwark's exit status. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "paths.h"
#include "run.h"

#define EXIT_NOT_FOUND 127
#define EXIT_NOT_EXECUTABLE 126

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
#define N_FORWARDED (sizeof forwarded / sizeof forwarded[0])

static volatile sig_atomic_t child_pid;

static void forward(int sig, siginfo_t *si, void *uctx)
{
	(void)uctx;
	/* The kernel sends a terminal's ^C, ^\ and hangup to the whole foreground process
	 * group, the child included: a second copy would make a program that handles the
	 * first (an interactive shell, a graceful shutdown) see two. */
	if (si->si_code == SI_KERNEL)
		return;
	int saved = errno;
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
	errno = saved;
}

/* A signal ignored when bulwark started (nohup, a background job of a script) must stay
 * ignored for the command, as exec would have left it: it gets no handler. */
static void install_forwarding(unsigned char *installed)
{
	struct sigaction sa = { .sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < N_FORWARDED; i++) {
		struct sigaction old;
		installed[i] = sigaction(forwarded[i], NULL, &old) == 0 &&
			       old.sa_handler != SIG_IGN &&
			       sigaction(forwarded[i], &sa, NULL) == 0;
	}
}

static void exec_child(char **argv, int report_fd, const sigset_t *mask,
		       const unsigned char *installed)
{
	for (size_t i = 0; i < N_FORWARDED; i++)
		if (installed[i])
			signal(forwarded[i], SIG_DFL);
	sigprocmask(SIG_SETMASK, mask, NULL);
	execvp(argv[0], argv);
	int err = errno;
	/* The parent knows the command, the child only the errno: it tells, the parent
	 * speaks. A short write would only cost the message, never the status. */
	if (write(report_fd, &err, sizeof err) < 0)
		err = errno;
	_exit(err == ENOENT ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE);
}

/* Messages and statuses as bash gives them. */
static int exec_failed(const char *cmd, int err)
{
	char path[PATH_MAX];
	struct stat st;
	if (err == ENOENT && bw_path_search(cmd, path, sizeof path) == 0) {
		/* The file is there: what is missing is its #! interpreter or ELF loader. */
		fprintf(stderr, "bulwark: %s: cannot execute: required file not found "
			"(its #! interpreter or ELF loader)\n", cmd);
		return EXIT_NOT_EXECUTABLE;
	}
	if (err == ENOENT) {
		if (strchr(cmd, '/'))
			fprintf(stderr, "bulwark: %s: %s\n", cmd, strerror(err));
		else
			fprintf(stderr, "bulwark: %s: command not found\n", cmd);
		return EXIT_NOT_FOUND;
	}
	if (err == EACCES && strchr(cmd, '/') && stat(cmd, &st) == 0 && S_ISDIR(st.st_mode))
		err = EISDIR;
	fprintf(stderr, "bulwark: %s: %s\n", cmd, strerror(err));
	return EXIT_NOT_EXECUTABLE;
}

static int wait_status(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			perror("bulwark: waitpid");
			return EXIT_NOT_EXECUTABLE;
		}
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

/* 0 when exec succeeded (the pipe closed on exec), else the child's errno. */
static int read_exec_error(int fd)
{
	int err;
	ssize_t n;
	do
		n = read(fd, &err, sizeof err);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof err ? err : 0;
}

int bw_spawn_wait(char **argv)
{
	sigset_t block, old;
	unsigned char installed[N_FORWARDED];
	int report[2];

	/* Blocked until the child's pid is known, so that no signal falls between fork and
	 * the handler knowing whom to forward it to. */
	sigemptyset(&block);
	for (size_t i = 0; i < N_FORWARDED; i++)
		sigaddset(&block, forwarded[i]);
	sigprocmask(SIG_BLOCK, &block, &old);
	install_forwarding(installed);

	if (pipe2(report, O_CLOEXEC) < 0) {
		perror("bulwark: pipe");
		return EXIT_NOT_EXECUTABLE;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("bulwark: fork");
		return EXIT_NOT_EXECUTABLE;
	}
	if (pid == 0) {
		close(report[0]);
		exec_child(argv, report[1], &old, installed);
	}
	child_pid = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(report[1]);
	int err = read_exec_error(report[0]);
	close(report[0]);
	int status = wait_status(pid);
	return err ? exec_failed(argv[0], err) : status;
}
