/* Pinned host memory through the fake CUDA runtime and driver, the ways real programs get it:
 *   - PyTorch's caching host allocator: cudaHostAlloc of the request rounded up to a power of
 *     two (300 MiB asked, 512 MiB allocated);
 *   - cudaMallocHost of 3 MiB (the driver maps 4 MiB), later freed;
 *   - 64 MiB of malloc'd memory registered with cudaHostRegister, unregistered, and its first
 *     32 MiB registered again (counted as heap and as registered);
 *   - NCCL's way: dlopen("libcuda.so.1") itself, cuGetProcAddress_v2, cuMemHostAlloc.
 * Run with LD_LIBRARY_PATH naming the folder of the fake libcudart.so.12 and libcuda.so.1.
 * Prints one fixed line and exits 0. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakecuda.h"

#define MiB ((size_t)1 << 20)

int cudaHostAlloc(void **pHost, size_t size, unsigned int flags);
int cudaMallocHost(void **ptr, size_t size);
int cudaFreeHost(void *ptr);
int cudaHostRegister(void *ptr, size_t size, unsigned int flags);
int cudaHostUnregister(void *ptr);

static void *volatile kept[8];

static void check(int r, const char *what) {
    if (r != 0) {
        fprintf(stderr, "pinned: %s failed with %d\n", what, r);
        exit(1);
    }
}

static size_t next_power_of_two(size_t n) {
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

int main(void) {
    void *big = NULL;
    size_t big_size = next_power_of_two(300 * MiB);
    check(cudaHostAlloc(&big, big_size, 0), "cudaHostAlloc"); /* SITE:pinned_host_alloc_512m */
    kept[0] = big;

    void *small = NULL;
    check(cudaMallocHost(&small, 3 * MiB), "cudaMallocHost"); /* SITE:pinned_malloc_host_3m */
    memset(small, 1, 3 * MiB);

    char *heap = malloc(64 * MiB); /* SITE:registered_malloc_64m */
    if (heap == NULL)
        return 1;
    memset(heap, 1, 64 * MiB);
    check(cudaHostRegister(heap, 64 * MiB, 0), "cudaHostRegister"); /* SITE:registered_64m */
    check(cudaHostUnregister(heap), "cudaHostUnregister"); /* SITE:unregister_64m */
    check(cudaHostRegister(heap, 32 * MiB, 0), "cudaHostRegister"); /* SITE:registered_32m */
    kept[1] = heap;

    void *cuda = dlopen("libcuda.so.1", RTLD_NOW);
    if (cuda == NULL) {
        fprintf(stderr, "pinned: %s\n", dlerror());
        return 1;
    }
    cuGetProcAddress_v2_fn proc = (cuGetProcAddress_v2_fn)dlsym(cuda, "cuGetProcAddress_v2");
    if (proc == NULL)
        return 1;
    cuMemHostAlloc_fn host_alloc = NULL;
    CUdriverProcAddressQueryResult status;
    check(proc("cuMemHostAlloc", (void **)&host_alloc, 12080, 0, &status), "cuGetProcAddress_v2");
    if (status != CU_GET_PROC_ADDRESS_SUCCESS || host_alloc == NULL)
        return 1;
    void *nccl = NULL;
    check(host_alloc(&nccl, 6 * MiB, 0), "cuMemHostAlloc"); /* SITE:nccl_mem_host_alloc_6m */
    kept[2] = nccl;

    check(cudaFreeHost(small), "cudaFreeHost"); /* SITE:pinned_free_3m */

    printf("pinned: done\n");
    return 0;
}
