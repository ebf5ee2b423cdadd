use super::*;

fn scan(src: &str) -> Vec<Site> {
    sites("t.cpp", src).0
}

/// `(anchor, method, formula, resolution)` of each site.
fn brief(src: &str) -> Vec<(String, Method, String, Resolution)> {
    scan(src)
        .into_iter()
        .map(|s| (s.anchor, s.method, s.formula.to_string(), s.resolution))
        .collect()
}

fn formulas(src: &str) -> Vec<String> {
    scan(src)
        .into_iter()
        .map(|s| s.formula.to_string())
        .collect()
}

#[test]
fn cuda_and_hip_pinned_allocations() {
    let src = r#"
void f(size_t n) {
  void *a, *b, *c, *d, *e;
  cudaHostAlloc(&a, 1 << 20, cudaHostAllocMapped);
  CUDA_CHECK(cudaMallocHost((void**)&b, n * sizeof(float)));
  cuMemHostAlloc(&c, 0x1000ULL, 0);
  cuMemAllocHost_v2(&d, 64);
  hipHostMalloc(&e, 2 * n, hipHostMallocDefault);
  cudaHostRegister(e, n, cudaHostRegisterDefault);
  cuMemHostRegister(e, 4096, 0);
  hipHostRegister(e, 8, 0);
}
"#;
    let got = scan(src);
    let rows: Vec<_> = got
        .iter()
        .map(|s| (s.line, s.anchor.as_str(), s.method, s.formula.to_string()))
        .collect();
    use Method::*;
    assert_eq!(
        rows,
        vec![
            (4, "f.cudaHostAlloc", CudaHostAlloc, "1048576".to_string()),
            (5, "f.cudaMallocHost", CudaHostAlloc, "n? × 4".to_string()),
            (6, "f.cuMemHostAlloc", CudaHostAlloc, "4096".to_string()),
            (7, "f.cuMemAllocHost_v2", CudaHostAlloc, "64".to_string()),
            (8, "f.hipHostMalloc", CudaHostAlloc, "n? × 2".to_string()),
            (9, "f.cudaHostRegister", CudaHostRegister, "n?".to_string()),
            (
                10,
                "f.cuMemHostRegister",
                CudaHostRegister,
                "4096".to_string()
            ),
            (11, "f.hipHostRegister", CudaHostRegister, "8".to_string()),
        ]
    );
    assert!(got
        .iter()
        .all(|s| s.pinned == Pinned::Yes && s.file == "t.cpp"));
    assert_eq!(got[1].shape, "n * sizeof(float)");
    assert_eq!(got[0].resolution, Resolution::Full);
    assert_eq!(got[1].resolution, Resolution::Partial);
}

#[test]
fn shared_memory_sized_by_ftruncate_through_macros_and_helpers() {
    let src = r#"
#define PER_THREAD_SHM_BUFFER_BYTES (4 * 1024 * 1024)
#define PER_THREAD_SHM_BUFFER_OFFSET (PER_THREAD_SHM_BUFFER_BYTES >> 1)
class SHMManager {
 private:
  static size_t round_to_alignment(size_t num) {
    return ((num + 63) / 64) * 64;
  }
  size_t compute_shm_size() {
    const size_t rounded_rank_buffer_size =
        round_to_alignment(PER_THREAD_SHM_BUFFER_BYTES) * _thread_num;
    const size_t shm_size = round_to_alignment(64 * 3) + rounded_rank_buffer_size;
    return shm_size;
  }
  void* init_shm(int target_rank) {
    const size_t shm_size = compute_shm_size();
    int fd = -1;
    fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, S_IRUSR | S_IWUSR);
    if (ftruncate(fd, shm_size) == -1) abort();
    void* shm_ptr = mmap(nullptr, shm_size, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_POPULATE, fd, 0);
    void* half = mmap(nullptr, PER_THREAD_SHM_BUFFER_OFFSET, 0, 0, -1, 0);
    return shm_ptr;
  }
};
int anon() { int fd = memfd_create("x", 0); return fd; }
"#;
    assert_eq!(
        brief(src),
        vec![
            (
                "SHMManager::init_shm.shm_open".to_string(),
                Method::SharedMemory,
                "_thread_num × 4194304 + 192".to_string(),
                Resolution::Partial
            ),
            (
                "SHMManager::init_shm.mmap".to_string(),
                Method::Mmap,
                "_thread_num × 4194304 + 192".to_string(),
                Resolution::Partial
            ),
            (
                "SHMManager::init_shm.mmap#2".to_string(),
                Method::Mmap,
                "2097152".to_string(),
                Resolution::Full
            ),
            (
                "anon.memfd_create".to_string(),
                Method::SharedMemory,
                "size(ftruncate size)".to_string(),
                Resolution::None
            ),
        ]
    );
    let s = scan(src);
    assert_eq!(s[0].shape, "shm_size");
    assert_eq!(s[0].pinned, Pinned::No);
}

#[test]
fn the_c_heap() {
    let src = r#"
#include <cstdlib>
void g(size_t n, size_t m) {
  void* a = malloc(16);
  void* b = std::calloc(n, sizeof(int64_t));
  void* c = ::aligned_alloc(64, n * m);
  void* d;
  posix_memalign(&d, 64, 3 * n);
  a = realloc(a, 2 * n);
  void* e = std::malloc(sizeof(Foo) * n);
}
"#;
    assert_eq!(
        formulas(src),
        vec![
            "16",
            "n? × 8",
            "n? × m?",
            "n? × 3",
            "n? × 2",
            "sizeof(Foo) × n?"
        ]
    );
    let s = scan(src);
    assert!(s
        .iter()
        .all(|s| s.method == Method::CHeap && s.pinned == Pinned::No));
    assert_eq!(s[1].shape, "n, sizeof(int64_t)");
    assert_eq!(s[2].anchor, "g.aligned_alloc");
}

#[test]
fn names_resolve_through_defines_constants_and_locals() {
    let src = r#"
#define KB 1024
#define MB (KB * KB)
#define CEIL(a, b) (((a) + (b) - 1) / (b))
namespace cfg { constexpr size_t kChunk = 2 * MB; }
const int kCount{4};
enum { kLanes = 8 };
struct Pool { static constexpr size_t kAlign = 256; };
void h(int requested) {
  size_t n = kCount * cfg::kChunk;
  n += 16;
  void* a = malloc(n);
  const int64_t k = static_cast<size_t>(requested) * sizeof(__half);
  void* b = malloc((size_t)k);
  void* c = malloc(CEIL(requested, 64) * 64 * kLanes);
  void* d = malloc(Pool::kAlign + this->extra_ + buf.size());
  int len = requested;
  len = len * 2;
  void* e = malloc(len);
  void* f = malloc((requested + Pool::kAlign - 1) / Pool::kAlign);
  void* g = malloc((len + 4095) & ~4095);
  void* h2 = malloc(cond ? 10 : 20);
  void* i = malloc((len + 15) & 0xFFFFFFF0);
  void* j = malloc((100 + 15) & ~15);
}
"#;
    assert_eq!(
        formulas(src),
        vec![
            "8388624",
            "requested? × 2",
            "cdiv(requested?, 64) × 512",
            "this->extra_ + size(buf.size()) + 256",
            "requested? × 2",
            "cdiv(requested?, 256)",
            "cdiv(requested? × 2, 4096) × 4096",
            "20",
            "cdiv(requested? × 2, 16) × 16",
            "112",
        ]
    );
    let r: Vec<_> = scan(src).into_iter().map(|s| s.resolution).collect();
    assert_eq!(r[0], Resolution::Full);
    assert_eq!(r[1], Resolution::Partial);
    assert_eq!(r[3], Resolution::None);
}

#[test]
fn sizeof_of_standard_types_pointers_and_others() {
    let src = r#"
template <typename T>
void s() {
  malloc(sizeof(char) + sizeof(uint16_t) + sizeof(c10::Half) + sizeof(float));
  malloc(sizeof(std::size_t) + sizeof(void*) + sizeof(const int64_t*) + sizeof(double));
  malloc(sizeof(T) * 10);
  malloc(sizeof x);
}
"#;
    assert_eq!(
        formulas(src),
        vec!["9", "32", "sizeof(T) × 10", "sizeof(x)"]
    );
}

#[test]
fn sizeof_of_records_of_the_file() {
    let src = r#"
#define RANKS 8
struct Ctx {
#if defined(__aarch64__)
  std::atomic<char> stamp[2];
#else
  volatile char stamp[2];
#endif
  int a, b;
  size_t count;
  int ranks[RANKS];
  void* ptrs[RANKS];
  Ctx* next;
  char pad[3];
  static int shared;
  Ctx(int x) : a(x) {}
  void f();
};
union U { int i; double d; char c[12]; };
struct Outer { char tag; Ctx inner; };
struct WithBase : Ctx { int z; };
struct Bits { int a : 3; };
void alloc(int n) {
  malloc(sizeof(Ctx));
  malloc(sizeof(U) + sizeof(struct Outer));
  malloc(n * sizeof(Ctx) + sizeof(WithBase) + sizeof(Bits));
  malloc(((n * sizeof(Ctx) + 63) / 64) * 64);
}
"#;
    // Ctx: 2 + pad 2 + 4 + 4 + pad 4 + 8 + 32 + 64 + 8 + 3 = 131 → 136.
    assert_eq!(
        formulas(src),
        vec![
            "136",
            "160",
            "n? × 136 + sizeof(WithBase) + sizeof(Bits)",
            "cdiv(n? × 136, 64) × 64",
        ]
    );
    let exact =
        "struct C { char b[256]; };\nvoid f(int n) { malloc(((n * sizeof(C) + 63) / 64) * 64); }";
    assert_eq!(formulas(exact), vec!["n? × 256"]);
}

#[test]
fn cuda_files_with_kernel_launches_still_give_their_sites() {
    let src = r#"
__global__ void k(float* x) { x[threadIdx.x] = 0; }
void run(int n) {
  float* h;
  cudaMallocHost(&h, n * sizeof(float));
  k<<<1, 256, 0, stream>>>(h);
  double* g;
  CUDACHECK(cudaMallocHost(&g, n * sizeof(double)));
}
"#;
    let (s, errors) = sites("k.cu", src);
    assert!(errors);
    assert_eq!(
        s.iter().map(|s| s.formula.to_string()).collect::<Vec<_>>(),
        vec!["n? × 4", "n? × 8"]
    );
    assert_eq!(s[1].anchor, "run.cudaMallocHost#2");
    assert!(!sites("ok.cpp", "int main() { void* p = malloc(4); }").1);
    // Nothing to find: not parsed, so no errors reported.
    assert!(!sites("k.cu", "void f() { k<<<1, 1>>>(); }").1);
}

#[test]
fn anchors_are_unique_and_scopes_qualified() {
    let src = r#"
static void* g_buf = malloc(8);
namespace vllm {
namespace {
void alloc() { malloc(1); malloc(2); }
}
struct Mgr {
  void grow() { malloc(3); }
};
void Mgr::shrink() { malloc(4); malloc(5); malloc(6); }
}
"#;
    let anchors: Vec<_> = scan(src).into_iter().map(|s| s.anchor).collect();
    assert_eq!(
        anchors,
        vec![
            "<file>.malloc",
            "vllm::alloc.malloc",
            "vllm::alloc.malloc#2",
            "vllm::Mgr::grow.malloc",
            "vllm::Mgr::shrink.malloc",
            "vllm::Mgr::shrink.malloc#2",
            "vllm::Mgr::shrink.malloc#3",
        ]
    );
    assert_eq!(scan(src)[0].scope, "<file>");
}

#[test]
fn what_is_not_an_allocation() {
    let src = r#"
void* malloc(size_t);
extern "C" void* calloc(size_t n, size_t m) { return nullptr; }
#define malloc(n) my_malloc(n)
void f() {
  my_malloc(4);
  // malloc(4);
  /* cudaHostAlloc(&p, 4, 0); */
  const char* s = "mmap(0, 4, 0, 0, -1, 0)";
  mgr->realloc(4096);
  ScratchPad::get()->realloc(1 << 20);
  pool.malloc(16);
  vllm::malloc(16);
  munmap(p, 4);
  cudaFreeHost(p);
}
"#;
    assert_eq!(brief(src), vec![]);
}

#[test]
fn hostile_input_does_not_panic() {
    let deep = format!(
        "void f() {{ malloc({}1{}); }}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let long = format!("void f() {{ malloc(1{}); }}", " + 1".repeat(20000));
    let cycle = "#define A (B + 1)\n#define B (A * 2)\nvoid f() { malloc(A); }";
    let rec = "int r(int n) { return r(n + 1); }\nvoid f() { malloc(r(1)); }";
    let selfref = "void f() { size_t n = 1; n = n + n; n = n + n; n = n * n; malloc(n); }";
    let broken = "void f( { malloc(4 + ; } } cudaHostAlloc(&p, \u{e9}\u{1F600}, 0";
    for src in [
        deep.as_str(),
        long.as_str(),
        cycle,
        rec,
        selfref,
        broken,
        "",
        "\0\0\0",
        "#define",
    ] {
        let _ = sites("x.cu", src);
    }
    assert_eq!(formulas(selfref), vec!["16"]);
    let c = formulas(cycle);
    assert_eq!(c.len(), 1);
    assert!(c[0].contains('A') || c[0].contains('B'), "{c:?}");
    assert!(scan(rec)[0].formula.has_unknown());
    let s = scan(&long);
    assert_eq!(s.len(), 1);
    assert!(s[0].shape.chars().count() <= 120);
}

#[test]
fn literals() {
    use super::expr::{number, type_size};
    assert_eq!(number("0x10ULL"), Some(16));
    assert_eq!(number("1'000'000"), Some(1_000_000));
    assert_eq!(number("0b101"), Some(5));
    assert_eq!(number("010"), Some(8));
    assert_eq!(number("64u"), Some(64));
    assert_eq!(number("1e9"), Some(1_000_000_000));
    assert_eq!(number("1.5f"), None);
    assert_eq!(number("0"), Some(0));
    assert_eq!(type_size("unsigned long long"), Some(8));
    assert_eq!(type_size("at::BFloat16"), Some(2));
    assert_eq!(type_size("Foo"), None);
}

#[test]
fn every_name_is_found_past_the_prefilter() {
    let calls = [
        ("cudaHostAlloc", 3),
        ("cudaMallocHost", 2),
        ("cuMemHostAlloc", 3),
        ("cuMemAllocHost", 2),
        ("cuMemAllocHost_v2", 2),
        ("hipHostMalloc", 3),
        ("hipHostAlloc", 3),
        ("hipMallocHost", 2),
        ("cudaHostRegister", 3),
        ("cuMemHostRegister", 3),
        ("cuMemHostRegister_v2", 3),
        ("hipHostRegister", 3),
        ("mmap", 6),
        ("mmap64", 6),
        ("shm_open", 3),
        ("memfd_create", 2),
        ("malloc", 1),
        ("valloc", 1),
        ("calloc", 2),
        ("aligned_alloc", 2),
        ("memalign", 2),
        ("posix_memalign", 3),
        ("realloc", 2),
    ];
    for (name, n) in calls {
        let args = vec!["4"; n].join(", ");
        let src = format!("void f() {{ {name}({args}); }}");
        assert_eq!(scan(&src).len(), 1, "{name}");
        let wrong = format!("void f() {{ {name}({args}, 4); }}");
        // Only the runtime's `cudaMallocHost(ptr, size, flags)` overload (and HIP's) takes
        // one more.
        let extra = matches!(name, "cudaMallocHost" | "hipMallocHost");
        assert_eq!(scan(&wrong).len(), usize::from(extra), "{name}");
    }
}
