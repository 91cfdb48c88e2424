/* rusage-exec OUT CMD ARGS...: run CMD, then append one line to OUT:
 *   "<pid> <maxrss_kb> <utime_s> <stime_s> <wall_s> <exit>  <argv[0] basename> <argv[1]>"
 * and exit with CMD's status. Used by the benchmark to measure every kubectl process of the
 * kubectl lifecycle script separately (the script's own wait4 only gives the max RSS). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: rusage-exec OUT CMD [ARGS...]\n"); return 2; }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 127; }
    if (pid == 0) { execvp(argv[2], argv + 2); perror("execvp"); _exit(127); }
    int status = 0; struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("wait4"); return 127; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const char *base = strrchr(argv[2], '/'); base = base ? base + 1 : argv[2];
    char line[512];
    int n = snprintf(line, sizeof line, "%d %ld %.6f %.6f %.6f %d %s %s\n", (int)pid, ru.ru_maxrss,
                     ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
                     (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, code, base, argc > 3 ? argv[3] : "-");
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) { if (write(fd, line, n) < 0) perror("write"); close(fd); }
    return code;
}
