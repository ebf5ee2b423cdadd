/* A fake CUDA driver (libcuda.so.1) for testing the tracer's pinned-memory hooks without a
 * GPU. Like the real driver, pinned host memory is a MAP_SHARED|MAP_ANONYMOUS mapping made
 * inside the call, rounded up to 2 MiB and fully resident; registration pins nothing here but
 * is checked like the real driver checks it (no overlap, unregister only what was registered).
 * Functions are reached by their exported names or through cuGetProcAddress(_v2), which maps
 * the unversioned names the runtime asks for (cuMemAllocHost) to the versioned entry points
 * (cuMemAllocHost_v2), as the real driver does. */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "fakecuda.h"

#define EXPORT __attribute__((visibility("default")))
#define ROUND ((size_t)2 << 20)
#define MAX_BLOCKS 256

struct block {
    char *p;
    size_t len; /* mapped length for allocations, registered length for registrations */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block allocated[MAX_BLOCKS];
static struct block registered[MAX_BLOCKS];

static int insert(struct block *table, char *p, size_t len) {
    for (int i = 0; i < MAX_BLOCKS; i++) {
        if (table[i].p == NULL) {
            table[i].p = p;
            table[i].len = len;
            return 1;
        }
    }
    return 0;
}

/* Removes the block starting at p; its length, or 0 when there is none. */
static size_t take(struct block *table, void *p) {
    for (int i = 0; i < MAX_BLOCKS; i++) {
        if (p != NULL && table[i].p == p) {
            size_t len = table[i].len;
            table[i].p = NULL;
            return len;
        }
    }
    return 0;
}

static CUresult host_alloc(void **pp, size_t bytesize) {
    if (pp == NULL || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    size_t len = (bytesize + ROUND - 1) / ROUND * ROUND;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return CUDA_ERROR_OUT_OF_MEMORY;
    /* Pinned pages are resident: touch every one. */
    for (size_t i = 0; i < len; i += 4096)
        ((volatile char *)p)[i] = 0;
    pthread_mutex_lock(&lock);
    int ok = insert(allocated, p, len);
    pthread_mutex_unlock(&lock);
    if (!ok) {
        munmap(p, len);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuInit(unsigned int Flags) {
    return Flags == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags) {
    (void)Flags;
    return host_alloc(pp, bytesize);
}

EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t bytesize) {
    return host_alloc(pp, bytesize);
}

EXPORT CUresult cuMemFreeHost(void *p) {
    pthread_mutex_lock(&lock);
    size_t len = take(allocated, p);
    pthread_mutex_unlock(&lock);
    if (len == 0)
        return CUDA_ERROR_INVALID_VALUE;
    return munmap(p, len) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags) {
    (void)Flags;
    if (p == NULL || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    char *start = p;
    CUresult r = CUDA_SUCCESS;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_BLOCKS; i++) {
        struct block *b = &registered[i];
        if (b->p != NULL && start < b->p + b->len && b->p < start + bytesize)
            r = CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    }
    if (r == CUDA_SUCCESS && !insert(registered, start, bytesize))
        r = CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_unlock(&lock);
    return r;
}

EXPORT CUresult cuMemHostUnregister(void *p) {
    pthread_mutex_lock(&lock);
    size_t len = take(registered, p);
    pthread_mutex_unlock(&lock);
    return len == 0 ? CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED : CUDA_SUCCESS;
}

struct entry {
    const char *name; /* the name callers ask for */
    void *fn;
};

static const struct entry entries[] = {
    {"cuInit", (void *)cuInit},
    {"cuMemHostAlloc", (void *)cuMemHostAlloc},
    {"cuMemAllocHost", (void *)cuMemAllocHost_v2},
    {"cuMemFreeHost", (void *)cuMemFreeHost},
    {"cuMemHostRegister", (void *)cuMemHostRegister_v2},
    {"cuMemHostUnregister", (void *)cuMemHostUnregister},
};

EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                    cuuint64_t flags,
                                    CUdriverProcAddressQueryResult *symbolStatus) {
    (void)flags;
    if (symbol == NULL || pfn == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (cudaVersion < 11030) {
        status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
    } else {
        for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
            if (strcmp(entries[i].name, symbol) == 0) {
                *pfn = entries[i].fn;
                status = CU_GET_PROC_ADDRESS_SUCCESS;
            }
        }
    }
    if (symbolStatus != NULL)
        *symbolStatus = status;
    return status == CU_GET_PROC_ADDRESS_SUCCESS ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion,
                                 cuuint64_t flags) {
    return cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, NULL);
}
