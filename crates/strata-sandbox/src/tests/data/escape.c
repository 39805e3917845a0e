/* Tries, from inside a sandbox run, what a hostile scriptlet or RUN step would try in
 * order to reach the host. One line per attempt: "NAME refused ERRNO-TEXT" when the
 * sandbox refused it, "NAME ALLOWED" when it got through. Built statically by the tests
 * (gcc -static), so it runs in a root without a libc.
 *
 * argv: HOST_PID (a process on the host), DISK_MAJOR, DISK_MINOR (the host's root disk),
 *       MARKER (a path on the host, outside the image root)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/if_ether.h>

/* A call the kernel would answer with some other error if the sandbox let it through
 * (EINVAL for a null argument, ENOENT for a missing module): only EPERM/EACCES mean
 * "refused by the sandbox". */
static void kernel(const char *name, long ret) {
    int e = errno;
    int refused = ret < 0 && (e == EPERM || e == EACCES);
    errno = e;
    if (refused) printf("%s refused %s\n", name, strerror(e));
    else printf("%s ALLOWED (%ld, %s)\n", name, ret, strerror(e));
    fflush(stdout);
}

static void report(const char *name, int ok) {
    if (ok) printf("%s ALLOWED\n", name);
    else printf("%s refused %s\n", name, strerror(errno));
    fflush(stdout);
}

/* mknod a device, then open it for writing: the open is what must fail. */
static void device(const char *name, const char *path, mode_t type, int major, int minor) {
    unlink(path);
    if (mknod(path, type | 0600, makedev(major, minor)) != 0) { report(name, 0); return; }
    int fd = open(path, O_RDWR);
    report(name, fd >= 0);
    if (fd >= 0) close(fd);
    unlink(path);
}

static void write_file(const char *name, const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) { report(name, 0); return; }
    ssize_t n = write(fd, text, strlen(text));
    report(name, n > 0);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: escape HOST_PID MAJOR MINOR MARKER\n"); return 2; }
    pid_t host = atoi(argv[1]);
    int major = atoi(argv[2]), minor = atoi(argv[3]);
    const char *marker = argv[4];

    device("mknod-block-disk", "/tmp/disk", S_IFBLK, major, minor);
    device("mknod-block-in-dev", "/dev/disk", S_IFBLK, major, minor);
    device("mknod-char-mem", "/tmp/mem", S_IFCHR, 1, 1);
    device("mknod-char-kmsg", "/dev/kmsg2", S_IFCHR, 1, 11);

    mkdir("/tmp/m", 0755);
    report("mount-tmpfs", mount("none", "/tmp/m", "tmpfs", 0, NULL) == 0);
    report("mount-proc", mount("proc", "/tmp/m", "proc", 0, NULL) == 0);
    report("remount-proc-sys-rw", mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL) == 0);
    report("umount-proc-sys", umount2("/proc/sys", MNT_DETACH) == 0);

    write_file("write-core-pattern", "/proc/sys/kernel/core_pattern", "|/tmp/pwn");
    write_file("write-proc-sys-vm", "/proc/sys/vm/drop_caches", "3");
    write_file("write-sysrq-trigger", "/proc/sysrq-trigger", "h");
    write_file("write-sys-uevent-helper", "/sys/kernel/uevent_helper", "/tmp/pwn");
    write_file("write-sys-kernel-profiling", "/sys/kernel/profiling", "1");

    report("ptrace-host-process", ptrace(PTRACE_ATTACH, host, NULL, NULL) == 0);
    report("kill-host-process", kill(host, 0) == 0);

    int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    report("socket-raw-inet", s >= 0);
    if (s >= 0) close(s);
    s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    report("socket-packet", s >= 0);
    if (s >= 0) close(s);

    int nul = open("/dev/null", O_RDONLY);
    kernel("finit-module", syscall(SYS_finit_module, nul, "", 0));
    kernel("init-module", syscall(SYS_init_module, "\0\0\0\0", 4, ""));
    kernel("delete-module", syscall(SYS_delete_module, "strata_no_such_module", O_NONBLOCK));
    close(nul);

    kernel("unshare-user", unshare(CLONE_NEWUSER));
    kernel("unshare-mount", unshare(CLONE_NEWNS));
    kernel("setns", setns(0, 0));
    kernel("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
    kernel("open-by-handle-at", syscall(SYS_open_by_handle_at, AT_FDCWD, "\x08\0\0\0\x01\0\0\0\x02\0\0\0\0\0\0\0", O_RDONLY));
    kernel("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
    report("sethostname", sethostname("pwned", 5) == 0);
    kernel("io-uring-setup", syscall(425 /* io_uring_setup */, 1, calloc(1, 120)));
    kernel("bpf", syscall(SYS_bpf, 0, NULL, 0));
    kernel("perf-event-open", syscall(SYS_perf_event_open, calloc(1, 128), 0, -1, -1, 0));

    /* The classic chroot break-out: a chroot below the cwd, then .. up to the real root. */
    mkdir("/tmp/jail", 0755);
    int up = open("/", O_RDONLY);
    if (chroot("/tmp/jail") == 0) {
        fchdir(up);
        for (int i = 0; i < 64; i++) chdir("..");
        chroot(".");
    }
    report("chroot-breakout-sees-host-marker", access(marker, F_OK) == 0);
    return 0;
}
