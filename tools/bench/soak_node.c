/*
 * soak_node.c - see soak_node.h.
 */
#include "soak_node.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t soak_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void soak_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Whether a line of `path` from offset `from` on contains `needle`. */
static int file_has(const char *path, long from, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    fseek(f, from, SEEK_SET);
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int soak_node_alive(soak_node_t *n, int *status)
{
    if (n->pid <= 0) return 0;
    int st;
    pid_t got = waitpid(n->pid, &st, WNOHANG);
    if (got == 0) return 1;
    if (got == n->pid && status) *status = st;
    n->pid = 0;
    return 0;
}

void soak_node_kill9(soak_node_t *n)
{
    if (n->pid <= 0) return;
    kill(n->pid, SIGKILL);
    int st;
    while (waitpid(n->pid, &st, 0) < 0 && errno == EINTR)
        ;
    n->pid = 0;
}

/* Fork and exec herdd for n, stdin from /dev/null. */
static pid_t spawn(const soak_node_t *n)
{
    const char *argv[16];
    size_t k = 0;
    argv[k++] = n->herdd;
    argv[k++] = "--name";
    argv[k++] = n->name;
    argv[k++] = "--listen";
    argv[k++] = n->listen;
    argv[k++] = "--cookie-file";
    argv[k++] = n->cookie;
    argv[k++] = "--control";
    argv[k++] = n->control;
    argv[k++] = "--log-level";
    argv[k++] = "warn";
    if (n->seed) {
        argv[k++] = "--join";
        argv[k++] = n->seed;
    }
    argv[k] = NULL;
    int out = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int null = open("/dev/null", O_RDONLY);
    pid_t parent = getpid(), pid = out >= 0 && null >= 0 ? fork() : -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        dup2(null, 0);
        dup2(out, 1);
        dup2(out, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (out >= 0) close(out);
    if (null >= 0) close(null);
    return pid;
}

int soak_node_start(soak_node_t *n, int port, int ready_ms)
{
    if (port) snprintf(n->listen, sizeof(n->listen), "tcp://127.0.0.1:%d", port);
    char ready[160];
    snprintf(ready, sizeof(ready), "herdd: ready name=%s listen=%s ", n->name, n->listen);
    long from = file_size(n->log);
    n->pid = spawn(n);
    if (n->pid < 0) return n->pid = 0, -1;
    n->starts++;
    n->started_ms = soak_now_ms();
    for (uint64_t deadline = n->started_ms + (uint64_t)ready_ms; soak_now_ms() < deadline;
         soak_sleep_ms(20)) {
        if (file_has(n->log, from, ready)) return 0;
        if (!soak_node_alive(n, NULL)) return -1;
    }
    soak_node_kill9(n);
    return -1;
}

long soak_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}
