/* Runs a command COUNT times in a row (posix_spawn, then waitpid) and prints the wall time
 * per run. A shell loop would add its own fork and parsing to every start, which is the
 * very cost being measured.
 *
 * usage: spawnloop COUNT [-e NAME=VALUE]... -- PROGRAM [ARG...]
 * The child gets this environment without LD_PRELOAD and BULWARK_*, plus each -e: the
 * launcher itself always runs without the shim, so both sides pay the same launcher.
 * The child's stdout and stderr go to /dev/null (dd reports on stderr). Prints
 * "seconds_per_run VALUE"; exits 1 if any run did not exit 0. */
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bench.h"

static char **child_env(char **extra, int n_extra)
{
	int n = 0;
	while (environ[n])
		n++;
	char **env = calloc((size_t)(n + n_extra + 1), sizeof *env);
	if (!env)
		bench_die("calloc");
	int k = 0;
	for (int i = 0; i < n; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
		    strncmp(environ[i], "BULWARK_", 8) != 0)
			env[k++] = environ[i];
	for (int i = 0; i < n_extra; i++)
		env[k++] = extra[i];
	return env;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 0;
	char **extra = calloc((size_t)argc, sizeof *extra);
	int n_extra = 0, i = 2;
	if (!extra)
		bench_die("calloc");
	for (; i + 1 < argc && strcmp(argv[i], "-e") == 0; i += 2)
		extra[n_extra++] = argv[i + 1];
	if (count <= 0 || i + 1 >= argc || strcmp(argv[i], "--") != 0) {
		fprintf(stderr, "usage: spawnloop COUNT [-e NAME=VALUE]... -- PROGRAM [ARG...]\n");
		return 2;
	}
	char **cmd = argv + i + 1;
	char **env = child_env(extra, n_extra);

	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);

	double t0 = bench_now();
	for (long r = 0; r < count; r++) {
		pid_t pid;
		int st;
		if ((errno = posix_spawn(&pid, cmd[0], &fa, NULL, cmd, env)) != 0)
			bench_die(cmd[0]);
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				bench_die("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "%s: run %ld ended with %s %d\n", cmd[0], r + 1,
				WIFEXITED(st) ? "status" : "signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			return 1;
		}
	}
	double dt = bench_now() - t0;
	printf("seconds_per_run %.9f\n", dt / (double)count);
	return 0;
}
