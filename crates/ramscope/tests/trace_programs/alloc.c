/* Known allocations for testing `ramscope trace`: every allocation sits on a line marked
 * with a SITE comment, and sites.rs (in ../trace_support) lists what a correct tracer finds at
 * each one. Tests find line numbers by reading this file, so lines may move freely.
 *
 *   alloc               the parent: every kind, a fork child, an exec'd child, a spawned
 *                       child and a thread; prints one fixed line and exits 0
 *   alloc child-exec    what the fork+exec child runs (7 MiB)
 *   alloc child-spawn   what the posix_spawn child runs (11 MiB)
 *   alloc killme        50 MiB, prints "ready", then sleeps until killed
 *
 * Every pointer is stored in `kept` so that no optimisation level drops an allocation, and
 * memory is touched with a non-zero byte so that malloc+memset is never turned into calloc.
 * Sizes are distinct so a reader can recognise each site by its bytes as well as its line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

extern char **environ;

/* Where every allocation goes, so that the compiler must assume it is used. */
static void *volatile kept[64];
static int nkept;

static void keep(void *p) {
    kept[nkept++ % 64] = p;
}

static void die(const char *what) {
    fprintf(stderr, "alloc: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *check(void *p, const char *what) {
    if (p == NULL || p == MAP_FAILED)
        die(what);
    return p;
}

/* Writes one non-zero byte per page of [p, p+n). */
static void touch(void *p, size_t n) {
    volatile char *c = p;
    for (size_t i = 0; i < n; i += 4096)
        c[i] = 1;
}

static void *thread_main(void *arg) {
    (void)arg;
    void *p = check(malloc(9 * MiB), "thread malloc"); /* SITE:thread_malloc_9m */
    touch(p, 9 * MiB);
    return p;
}

static int child_exec(void) {
    void *p = check(malloc(7 * MiB), "exec child malloc"); /* SITE:exec_child_malloc_7m */
    touch(p, 7 * MiB);
    keep(p);
    return 0;
}

static int child_spawn(void) {
    void *p = check(malloc(11 * MiB), "spawn child malloc"); /* SITE:spawn_child_malloc_11m */
    touch(p, 11 * MiB);
    keep(p);
    return 0;
}

static _Noreturn void killme(void) {
    void *p = check(malloc(50 * MiB), "killme malloc"); /* SITE:killme_malloc_50m */
    touch(p, 50 * MiB);
    keep(p);
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}

static void wait_ok(pid_t pid, const char *what) {
    int status;
    if (waitpid(pid, &status, 0) != pid)
        die(what);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "alloc: %s failed (status %d)\n", what, status);
        exit(1);
    }
}

/* The heap: one call of each allocation function. */
static void heap(void) {
    void *p = check(malloc(3 * MiB), "malloc"); /* SITE:malloc_3m */
    touch(p, 3 * MiB);
    keep(p);

    /* Never touched: its resident bytes must stay near zero. */
    keep(check(calloc(256, MiB), "calloc")); /* SITE:calloc_256m */

    void *a = NULL;
    if (posix_memalign(&a, 4096, 1 * MiB) != 0) /* SITE:posix_memalign_1m */
        die("posix_memalign");
    touch(a, 1 * MiB);
    keep(a);

    void *b = check(aligned_alloc(65536, 2 * MiB), "aligned_alloc"); /* SITE:aligned_alloc_2m */
    touch(b, 2 * MiB);
    keep(b);
    free(b); /* SITE:free_aligned_2m */

    void *r = check(malloc(1 * MiB), "malloc before realloc"); /* SITE:realloc_from_1m */
    touch(r, 1 * MiB);
    r = check(realloc(r, 8 * MiB), "realloc"); /* SITE:realloc_to_8m */
    touch(r, 8 * MiB);
    keep(r);

    /* Small blocks, far below the stack threshold: the sampled path. Kept live. */
    void **small = check(malloc(10000 * sizeof(void *)), "small table"); /* SITE:small_table */
    for (int i = 0; i < 10000; i++)
        small[i] = check(malloc(100), "small malloc"); /* SITE:small_100b */
    for (int i = 0; i < 10000; i++)
        memset(small[i], 2, 100);
    keep(small);
}

/* mmap, mremap, munmap, and the shared kinds. */
static void mappings(void) {
    const int prot = PROT_READ | PROT_WRITE;
    const int anon = MAP_PRIVATE | MAP_ANONYMOUS;

    void *m = check(mmap(NULL, 16 * MiB, prot, anon, -1, 0), "mmap 16m"); /* SITE:mmap_16m */
    touch(m, 8 * MiB);
    m = check(mremap(m, 16 * MiB, 32 * MiB, MREMAP_MAYMOVE), "mremap"); /* SITE:mremap_32m */
    keep(m);

    void *k = check(mmap(NULL, 13 * MiB, prot, anon, -1, 0), "mmap 13m"); /* SITE:mmap_keep_13m */
    touch(k, 13 * MiB);
    keep(k);
    void *d = check(mmap(NULL, 14 * MiB, prot, anon, -1, 0), "mmap 14m"); /* SITE:mmap_drop_14m */
    touch(d, 14 * MiB);
    if (munmap(d, 14 * MiB) != 0) /* SITE:munmap_14m */
        die("munmap");

    char name[64];
    snprintf(name, sizeof name, "/ramscope-alloc-%d", (int)getpid());
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600); /* SITE:shm_open */
    if (fd < 0)
        die("shm_open");
    if (ftruncate(fd, 8 * MiB) != 0)
        die("ftruncate shm");
    void *s = check(mmap(NULL, 8 * MiB, prot, MAP_SHARED, fd, 0), "mmap shm"); /* SITE:shm_8m */
    touch(s, 2 * MiB);
    keep(s);
    close(fd);
    if (shm_unlink(name) != 0) /* SITE:shm_unlink */
        die("shm_unlink");

    int mfd = memfd_create("ramscope-alloc", 0); /* SITE:memfd_create */
    if (mfd < 0)
        die("memfd_create");
    if (ftruncate(mfd, 4 * MiB) != 0)
        die("ftruncate memfd");
    void *f = check(mmap(NULL, 4 * MiB, prot, MAP_SHARED, mfd, 0), "mmap memfd"); /* SITE:memfd_4m */
    touch(f, 1 * MiB);
    keep(f);
    close(mfd);

    const int shared_anon = MAP_SHARED | MAP_ANONYMOUS;
    void *sh = check(mmap(NULL, 1 * MiB, prot, shared_anon, -1, 0), "mmap"); /* SITE:shared_anon_1m */
    touch(sh, 1 * MiB);
    keep(sh);
}

/* A fork child, a fork+exec child, a posix_spawn child and a thread. */
static void others(const char *self) {
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        void *p = check(malloc(5 * MiB), "fork child malloc"); /* SITE:fork_child_malloc_5m */
        touch(p, 5 * MiB);
        keep(p);
        exit(0); /* exit, not _exit: the child ends as a program does */
    }
    wait_ok(pid, "fork child");

    pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        execl(self, self, "child-exec", (char *)NULL);
        _exit(127);
    }
    wait_ok(pid, "exec child");

    char *argv[] = {(char *)self, "child-spawn", NULL};
    int err = posix_spawn(&pid, self, NULL, NULL, argv, environ);
    if (err != 0) {
        errno = err;
        die("posix_spawn");
    }
    wait_ok(pid, "spawn child");

    pthread_t t;
    void *from_thread;
    if ((err = pthread_create(&t, NULL, thread_main, NULL)) != 0) {
        errno = err;
        die("pthread_create");
    }
    pthread_join(t, &from_thread);
    keep(check(from_thread, "thread"));
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child-exec") == 0)
        return child_exec();
    if (argc > 1 && strcmp(argv[1], "child-spawn") == 0)
        return child_spawn();
    if (argc > 1 && strcmp(argv[1], "killme") == 0)
        killme();
    if (argc > 1) {
        fprintf(stderr, "usage: alloc [child-exec|child-spawn|killme]\n");
        return 2;
    }
    heap();
    mappings();
    /* /proc/self/exe, not argv[0]: the program may be started by a relative path or by PATH. */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        die("readlink /proc/self/exe");
    self[n] = 0;
    others(self);
    printf("alloc: done\n");
    return 0;
}
