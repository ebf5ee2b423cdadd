use super::*;

use super::builder::Builder;

fn model() -> Builder {
    Builder::new()
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", 4)
        .kv_u32("llama.context_length", 2048)
        .kv_str_array("tokenizer.ggml.tokens", 5000)
        .tensor("token_embd.weight", &[256, 1024], 12)
        .tensor("output_norm.weight", &[256], 0)
}

fn p(bytes: &[u8]) -> Result<GgufInfo, GgufError> {
    parse(bytes, Path::new("m.gguf"))
}

fn reason(bytes: &[u8]) -> String {
    match p(bytes) {
        Err(GgufError::Bad { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn reads_metadata_and_tensor_table() {
    let bytes = model().build();
    let g = p(&bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.architecture(), Some("llama"));
    assert_eq!(g.arch_u64("block_count"), Some(4));
    assert_eq!(g.arch_u64("context_length"), Some(2048));
    // The vocabulary is longer than what is kept: its length only.
    assert_eq!(
        g.get("tokenizer.ggml.tokens"),
        Some(&Value::Array {
            len: 5000,
            values: vec![]
        })
    );
    assert_eq!(g.tensors.len(), 2);
    // 256 × 1024 in Q4_K: 1024 blocks of 144 B.
    assert_eq!(g.tensors[0].bytes, 147_456);
    assert_eq!(g.tensors[0].kind, "Q4_K");
    assert_eq!(g.tensors[1].bytes, 1024);
    assert_eq!(g.tensor_bytes, 148_480);
    assert_eq!(g.bytes_by_type.get("F32"), Some(&1024));
    assert_eq!(g.data_offset % 32, 0);
    assert_eq!(g.file_bytes, bytes.len() as u64);
}

#[test]
fn reads_a_file_without_its_data_and_refuses_what_is_not_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, model().build()).unwrap();
    assert_eq!(read_header(&path).unwrap().tensors.len(), 2);
    assert!(matches!(
        read_header(dir.path()),
        Err(GgufError::Bad { .. })
    ));
    assert!(matches!(
        read_header(&dir.path().join("missing.gguf")),
        Err(GgufError::Io { .. })
    ));
}

#[test]
fn hostile_headers_are_one_error() {
    let good = model().build();
    assert!(reason(b"GG").contains("magic"));
    assert!(reason(b"GGML\x03\0\0\0").contains("no GGUF magic"));
    let mut v1 = good.clone();
    v1[4] = 1;
    assert!(reason(&v1).contains("version 1"));
    // Counts far beyond anything real.
    let mut huge = good.clone();
    huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(reason(&huge).contains("too many"));
    // A key whose length claims more than the file holds.
    let mut long_key = good.clone();
    long_key[24..32].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(reason(&long_key).contains("more than"));
    // Truncated anywhere in the header.
    for cut in [10, 30, 100, 400] {
        let r = reason(&good[..cut]);
        assert!(
            r.contains("truncated") || r.contains("more than") || r.contains("cannot fit"),
            "{cut}: {r}"
        );
    }
    // Data cut off: the last tensor ends past the file.
    assert!(reason(&good[..good.len() - 1]).contains("past the file"));
}

#[test]
fn bad_tensors_and_values_are_refused() {
    let t = |dims: &[u64], ty: u32| {
        let mut b = Builder::new();
        Builder::string(&mut b.tensors, "x");
        b.tensors.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            b.tensors.extend(d.to_le_bytes());
        }
        b.tensors.extend(ty.to_le_bytes());
        b.tensors.extend(0u64.to_le_bytes());
        b.n_tensors = 1;
        b.data = 4096;
        reason(&b.build())
    };
    assert!(t(&[], 0).contains("0 dimensions"));
    assert!(t(&[1, 1, 1, 1, 1], 0).contains("5 dimensions"));
    assert!(t(&[32], 4).contains("unknown type 4"));
    assert!(t(&[33], 2).contains("whole Q4_0 blocks"));
    assert!(t(&[u64::MAX, 2], 0).contains("overflows"));
    assert!(t(&[1 << 40], 0).contains("past the file"));

    let dup = Builder::new().kv_u32("a", 1).kv_u32("a", 2).build();
    assert!(reason(&dup).contains("twice"));
    let align = Builder::new().kv_u32("general.alignment", 48).build();
    assert!(reason(&align).contains("power of two"));
    // An array whose length cannot fit in the bytes left.
    let mut arr = Builder::new();
    Builder::string(&mut arr.kv, "k");
    arr.kv.extend(9u32.to_le_bytes());
    arr.kv.extend(4u32.to_le_bytes());
    arr.kv.extend((1u64 << 40).to_le_bytes());
    arr.n_kv = 1;
    assert!(reason(&arr.build()).contains("cannot fit"));
    let mut nested = Builder::new();
    Builder::string(&mut nested.kv, "k");
    nested.kv.extend(9u32.to_le_bytes());
    nested.kv.extend(9u32.to_le_bytes());
    nested.kv.extend(0u64.to_le_bytes());
    nested.n_kv = 1;
    assert!(reason(&nested.build()).contains("arrays of arrays"));
    let mut unknown = Builder::new();
    Builder::string(&mut unknown.kv, "k");
    unknown.kv.extend(13u32.to_le_bytes());
    unknown.n_kv = 1;
    assert!(reason(&unknown.build()).contains("unknown value type 13"));
}

#[test]
fn the_fuzz_seed_is_a_valid_gguf() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/gguf/tiny");
    let g = read_header(&seed).unwrap();
    assert_eq!(g.architecture(), Some("llama"));
    assert_eq!(g.tensor_bytes, 576 + 1024);
    crate::fuzz::gguf(&std::fs::read(&seed).unwrap());
}

/// A file PyPI's `gguf` package wrote (scripts/make_tiny_gguf.py: 1 layer, 64 wide, a
/// 300-token vocabulary, f32), read as llama.cpp lays it out.
#[test]
fn reads_what_the_gguf_package_writes() {
    let seed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/gguf/written-by-gguf-py");
    let g = read_header(&seed).unwrap();
    assert_eq!(g.architecture(), Some("llama"));
    assert_eq!(g.arch_u64("block_count"), Some(1));
    assert_eq!(g.arch_u64("context_length"), Some(512));
    assert_eq!(g.arch_u64("embedding_length"), Some(64));
    // 2 + 9 per layer tensors, all f32: embeddings and output 300 × 64 each, q and o 64 × 64,
    // k and v 32 × 64, gate and up 128 × 64, down 64 × 128, three norms of 64.
    assert_eq!(g.tensors.len(), 2 + 9 + 1);
    let elements = 2 * 300 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 128 * 64 + 3 * 64;
    assert_eq!(g.tensor_bytes, elements * 4);
    assert_eq!(g.bytes_by_type.keys().copied().collect::<Vec<_>>(), ["F32"]);
    assert!(g.file_bytes >= g.data_offset + g.tensor_bytes);
}
