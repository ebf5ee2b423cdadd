/* The two pieces of the tracer that stable Rust cannot express.
 *
 * 1. Per-thread state in the initial-exec TLS model. Rust picks the general-dynamic model for a
 *    shared object, whose __tls_get_addr may call malloc (to grow a thread's DTV after a dlopen)
 *    and so re-enter the malloc hook before the hook can read its own re-entrancy flag.
 *    Initial-exec TLS is a fixed offset from the thread pointer: no call, no allocation.
 *    (jemalloc and tcmalloc use initial-exec for the same reason.) A preloaded library is
 *    loaded at start-up, so its TLS is in the static block this model needs.
 *
 * 2. The dlsym trampoline. glibc's dlsym looks at its caller's return address to resolve
 *    RTLD_NEXT and the caller's local scope, so a wrapper that calls the real dlsym would change
 *    what RTLD_NEXT means for every library. The wrapper therefore *jumps* to the real dlsym
 *    (the caller's return address stays on the stack) unless the name is a CUDA driver entry
 *    point the tracer wraps; only those take the slow path through Rust.
 */
#define _GNU_SOURCE
#include <stddef.h>

static __thread unsigned char rs_thread_state[256]
    __attribute__((aligned(64), tls_model("initial-exec")));

void *ramscope_thread_state(void) { return rs_thread_state; }

/* Set by ramscope_dlsym_wants before it returns 0 (hidden: referenced PC-relative below). */
__attribute__((visibility("hidden"))) void *ramscope_real_dlsym_ptr;

#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".globl dlsym\n"
    ".type dlsym,@function\n"
    "dlsym:\n"
    "    push %rdi\n"
    "    push %rsi\n"
    "    sub $8, %rsp\n"
    "    mov %rsi, %rdi\n"
    "    call ramscope_dlsym_wants@PLT\n"
    "    add $8, %rsp\n"
    "    pop %rsi\n"
    "    pop %rdi\n"
    "    test %eax, %eax\n"
    "    jnz 1f\n"
    "    jmp *ramscope_real_dlsym_ptr(%rip)\n"
    "1:\n"
    "    jmp ramscope_dlsym_slow@PLT\n"
    ".size dlsym, .-dlsym\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".globl dlsym\n"
    ".type dlsym,%function\n"
    "dlsym:\n"
    "    stp x29, x30, [sp, #-32]!\n"
    "    mov x29, sp\n"
    "    stp x0, x1, [sp, #16]\n"
    "    mov x0, x1\n"
    "    bl ramscope_dlsym_wants\n"
    "    mov w2, w0\n"
    "    ldp x0, x1, [sp, #16]\n"
    "    ldp x29, x30, [sp], #32\n"
    "    cbnz w2, 1f\n"
    "    adrp x16, ramscope_real_dlsym_ptr\n"
    "    ldr x16, [x16, :lo12:ramscope_real_dlsym_ptr]\n"
    "    br x16\n"
    "1:\n"
    "    b ramscope_dlsym_slow\n"
    ".size dlsym, .-dlsym\n");
#endif
