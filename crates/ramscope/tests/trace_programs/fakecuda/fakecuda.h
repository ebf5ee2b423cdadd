/* The few CUDA types the fake driver and runtime need, with the real API's names and sizes
 * (cuda.h of CUDA 12/13), so the tracer sees the same ABI as with a real CUDA install. */
#ifndef RAMSCOPE_FAKECUDA_H
#define RAMSCOPE_FAKECUDA_H
#include <stddef.h>
#include <stdint.h>

typedef int CUresult; /* an enum in cuda.h: int-sized, 0 = CUDA_SUCCESS */
typedef uint64_t cuuint64_t;
typedef enum CUdriverProcAddressQueryResult_enum {
    CU_GET_PROC_ADDRESS_SUCCESS = 0,
    CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND = 1,
    CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT = 2
} CUdriverProcAddressQueryResult;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED 712
#define CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED 713
#define CUDA_ERROR_NOT_FOUND 500

typedef CUresult (*cuGetProcAddress_v2_fn)(const char *symbol, void **pfn, int cudaVersion,
                                           cuuint64_t flags,
                                           CUdriverProcAddressQueryResult *symbolStatus);
typedef CUresult (*cuMemHostAlloc_fn)(void **pp, size_t bytesize, unsigned int Flags);
typedef CUresult (*cuMemAllocHost_fn)(void **pp, size_t bytesize);
typedef CUresult (*cuMemFreeHost_fn)(void *p);
typedef CUresult (*cuMemHostRegister_fn)(void *p, size_t bytesize, unsigned int Flags);
typedef CUresult (*cuMemHostUnregister_fn)(void *p);

#endif
