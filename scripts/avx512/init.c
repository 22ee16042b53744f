/* Tiny PID-1 for the Bochs harness.
 * Mounts /proc /sys /dev /tmp, reads argv from /args (NUL-separated),
 * runs /bin/t, prints "EXIT=<code>" and powers off. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <termios.h>

static void wr(const char *s) { write(1, s, strlen(s)); }

static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
    mkdir("/proc", 0755); mkdir("/sys", 0755); mkdir("/dev", 0755);
    mkdir("/tmp", 01777); mkdir("/root", 0700);
    mount("proc", "/proc", "proc", 0, NULL);
    mount("sysfs", "/sys", "sysfs", 0, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777");
    mkdir("/dev/shm", 01777);
    mount("tmpfs", "/dev/shm", "tmpfs", 0, "mode=1777");
    int fd = open("/dev/console", O_RDWR);
    if (fd < 0) fd = open("/dev/ttyS0", O_RDWR);
    if (fd >= 0) { dup2(fd, 0); dup2(fd, 1); dup2(fd, 2); if (fd > 2) close(fd); }
    /* raw output: no \n -> \r\n translation, so the program's bytes come back unchanged */
    struct termios tio;
    if (tcgetattr(1, &tio) == 0) { tio.c_oflag &= ~OPOST; tcsetattr(1, TCSANOW, &tio); }
    /* keep kernel messages off the console from now on */
    int pk = open("/proc/sys/kernel/printk", O_WRONLY);
    if (pk >= 0) { write(pk, "1\n", 2); close(pk); }

    /* argv */
    static char buf[1 << 16];
    char *argv[1024]; int argc = 0;
    argv[argc++] = "/bin/t";
    int af = open("/args", O_RDONLY);
    if (af >= 0) {
        ssize_t n = read(af, buf, sizeof(buf) - 1); close(af);
        if (n > 0) {
            buf[n] = 0;
            char *p = buf, *end = buf + n;
            while (p < end && argc < 1022) { argv[argc++] = p; p += strlen(p) + 1; }
        }
    }
    argv[argc] = NULL;
    /* environment: defaults, plus extra lines from /env (NUL-separated KEY=VAL) */
    clearenv();
    setenv("PATH", "/bin:/sbin:/usr/bin", 1);
    setenv("HOME", "/root", 1);
    setenv("TMPDIR", "/tmp", 1);
    setenv("TERM", "dumb", 1);
    static char ebuf[1 << 16];
    int ef = open("/env", O_RDONLY);
    if (ef >= 0) {
        ssize_t n = read(ef, ebuf, sizeof(ebuf) - 1); close(ef);
        if (n > 0) { ebuf[n] = 0; char *p = ebuf, *end = ebuf + n;
            while (p < end) { if (*p) putenv(p); p += strlen(p) + 1; } }
    }
    chdir("/");

    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char line[256];
    snprintf(line, sizeof line, "\n@@BOCHS-HARNESS cpus=%d uptime_at_start=", ncpu);
    wr(line);
    int up = open("/proc/uptime", O_RDONLY);
    if (up >= 0) { char u[64]; ssize_t n = read(up, u, sizeof u - 1); close(up);
        if (n > 0) { u[n] = 0; char *sp = strchr(u, ' '); if (sp) *sp = 0; wr(u); } }
    wr("\n@@BOCHS-HARNESS-BEGIN\n");

    double t0 = now();
    int code = 255;
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);   /* no interactive stdin */
        if (nul >= 0) { dup2(nul, 0); if (nul > 0) close(nul); }
        execv("/bin/t", argv);
        fprintf(stderr, "init: execv /bin/t failed: %s\n", strerror(errno));
        _exit(127);
    }
    for (;;) {
        int st; pid_t w = waitpid(-1, &st, 0);   /* also reaps orphans */
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break;
        if (w == pid) {
            if (WIFEXITED(st)) code = WEXITSTATUS(st);
            else if (WIFSIGNALED(st)) code = 128 + WTERMSIG(st);
            break;
        }
    }
    double t1 = now();
    sync();
    snprintf(line, sizeof line, "\n@@BOCHS-HARNESS-END guest_seconds=%.3f\nEXIT=%d\n", t1 - t0, code);
    wr(line);
    tcdrain(1);
    sleep(1);
    reboot(RB_POWER_OFF);
    for (;;) pause();
}
