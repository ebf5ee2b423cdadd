/* A fake CUDA runtime (libcudart.so.12): reaches the driver the way the real runtime does,
 * by dlopen("libcuda.so.1") and cuGetProcAddress_v2, never through the dynamic linker, so a
 * tracer that only interposes exported driver symbols misses these calls. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "fakecuda.h"

#define EXPORT __attribute__((visibility("default")))

typedef int cudaError_t; /* 0 = cudaSuccess */
#define cudaErrorInitializationError 3

static struct {
    cuMemHostAlloc_fn host_alloc;
    cuMemAllocHost_fn alloc_host;
    cuMemFreeHost_fn free_host;
    cuMemHostRegister_fn host_register;
    cuMemHostUnregister_fn host_unregister;
} driver;
static int loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *get(cuGetProcAddress_v2_fn proc, const char *name) {
    void *fn = NULL;
    CUdriverProcAddressQueryResult status;
    if (proc(name, &fn, 12080, 0, &status) != CUDA_SUCCESS ||
        status != CU_GET_PROC_ADDRESS_SUCCESS)
        return NULL;
    return fn;
}

static void load(void) {
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (h == NULL) {
        fprintf(stderr, "fake cudart: %s\n", dlerror());
        return;
    }
    cuGetProcAddress_v2_fn proc = (cuGetProcAddress_v2_fn)dlsym(h, "cuGetProcAddress_v2");
    if (proc == NULL)
        return;
    driver.host_alloc = (cuMemHostAlloc_fn)get(proc, "cuMemHostAlloc");
    driver.alloc_host = (cuMemAllocHost_fn)get(proc, "cuMemAllocHost");
    driver.free_host = (cuMemFreeHost_fn)get(proc, "cuMemFreeHost");
    driver.host_register = (cuMemHostRegister_fn)get(proc, "cuMemHostRegister");
    driver.host_unregister = (cuMemHostUnregister_fn)get(proc, "cuMemHostUnregister");
    loaded = driver.host_alloc && driver.alloc_host && driver.free_host &&
             driver.host_register && driver.host_unregister;
}

static int ready(void) {
    pthread_once(&once, load);
    return loaded;
}

EXPORT cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags) {
    return ready() ? driver.host_alloc(pHost, size, flags) : cudaErrorInitializationError;
}

EXPORT cudaError_t cudaMallocHost(void **ptr, size_t size) {
    return ready() ? driver.alloc_host(ptr, size) : cudaErrorInitializationError;
}

EXPORT cudaError_t cudaFreeHost(void *ptr) {
    return ready() ? driver.free_host(ptr) : cudaErrorInitializationError;
}

EXPORT cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags) {
    return ready() ? driver.host_register(ptr, size, flags) : cudaErrorInitializationError;
}

EXPORT cudaError_t cudaHostUnregister(void *ptr) {
    return ready() ? driver.host_unregister(ptr) : cudaErrorInitializationError;
}
