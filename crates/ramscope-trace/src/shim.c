/* The two pieces of the tracer that stable Rust cannot express.
 *
 * 1. Per-thread state in the initial-exec TLS model. Rust picks the general-dynamic model for a
 *    shared object, whose __tls_get_addr may call malloc (to grow a thread's DTV after a dlopen)
 *    and so re-enter the malloc hook before the hook can read its own re-entrancy flag.
 *    Initial-exec TLS is a fixed offset from the thread pointer: no call, no allocation.
 *    (jemalloc and tcmalloc use initial-exec for the same reason.) A preloaded library is
 *    loaded at start-up, so its TLS is in the static block this model needs.
 *
 * 2. Variadic functions (below), which stable Rust cannot define. They are hidden here and
 *    exported by naked Rust functions that jump to them (hooks/exec.rs): only symbols Rust
 *    declares make it into the library's export list.
 */
#define _GNU_SOURCE
#include <stddef.h>

static __thread unsigned char rs_thread_state[256]
    __attribute__((aligned(64), tls_model("initial-exec")));

void *ramscope_thread_state(void) { return rs_thread_state; }

/* execl, execlp, execle. glibc's own execl* call execve internally, not through the dynamic linker, so
 *    without these an exec'd program would lose its link to the image before it (see
 *    hooks/exec.rs). Each collects its arguments and calls the interposed execv/execvp/execve. */
#include <stdarg.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

#define RS_MAX_ARGS 4096

static int rs_collect(const char *arg0, va_list ap, const char **argv) {
    int n = 0;
    argv[n++] = arg0;
    while (argv[n - 1] != NULL) {
        if (n >= RS_MAX_ARGS) { errno = E2BIG; return -1; }
        argv[n++] = va_arg(ap, const char *);
    }
    return n;
}

__attribute__((visibility("hidden"))) int ramscope_execl(const char *path, const char *arg, ...) {
    const char *argv[RS_MAX_ARGS];
    va_list ap;
    va_start(ap, arg);
    int n = rs_collect(arg, ap, argv);
    va_end(ap);
    if (n < 0) return -1;
    return execv(path, (char *const *)argv);
}

__attribute__((visibility("hidden"))) int ramscope_execlp(const char *file, const char *arg, ...) {
    const char *argv[RS_MAX_ARGS];
    va_list ap;
    va_start(ap, arg);
    int n = rs_collect(arg, ap, argv);
    va_end(ap);
    if (n < 0) return -1;
    return execvp(file, (char *const *)argv);
}

__attribute__((visibility("hidden"))) int ramscope_execle(const char *path, const char *arg, ...) {
    const char *argv[RS_MAX_ARGS];
    va_list ap;
    va_start(ap, arg);
    int n = rs_collect(arg, ap, argv);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    if (n < 0) return -1;
    return execve(path, (char *const *)argv, envp);
}
