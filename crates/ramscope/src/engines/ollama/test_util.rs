//! Test helpers: GGUF files of any size written as sparse files (a header, then `set_len`), and
//! an Ollama store in a temporary folder.

use std::path::{Path, PathBuf};

use crate::gguf::types;

/// A decoder-only model's shape, written as a llama-architecture GGUF header.
#[derive(Debug, Clone)]
pub struct Shape {
    pub arch: &'static str,
    pub n_layer: u64,
    pub n_embd: u64,
    pub n_head: u64,
    pub n_head_kv: u64,
    pub n_ff: u64,
    pub n_vocab: u64,
    pub n_ctx_train: u64,
    /// ggml type id of the matrices (12: Q4_K, 8: Q8_0, 14: Q6_K, 1: F16).
    pub weight_type: u32,
    /// ggml type id of the token embedding table.
    pub embd_type: u32,
}

impl Shape {
    /// A model of roughly `target_bytes` of Q4_K weights: layers are added to a 4096-wide
    /// body until the file is that large (for cases reported as a file size).
    pub fn of_size(arch: &'static str, target_bytes: u64) -> Shape {
        let mut s = Shape {
            arch,
            n_layer: 1,
            n_embd: 4096,
            n_head: 32,
            n_head_kv: 8,
            n_ff: 14336,
            n_vocab: 131072,
            n_ctx_train: 131072,
            weight_type: 12,
            embd_type: 12,
        };
        while s.tensor_bytes() < target_bytes {
            s.n_layer += 1;
        }
        s
    }

    fn tensors(&self) -> Vec<(String, Vec<u64>, u32)> {
        let (e, kv, ff, v) = (
            self.n_embd,
            self.n_embd / self.n_head * self.n_head_kv,
            self.n_ff,
            self.n_vocab,
        );
        let w = self.weight_type;
        let mut t = vec![
            ("token_embd.weight".to_string(), vec![e, v], self.embd_type),
            ("output_norm.weight".to_string(), vec![e], 0),
            ("output.weight".to_string(), vec![e, v], w),
        ];
        for i in 0..self.n_layer {
            let b = |n: &str| format!("blk.{i}.{n}.weight");
            t.extend([
                (b("attn_norm"), vec![e], 0),
                (b("attn_q"), vec![e, e], w),
                (b("attn_k"), vec![e, kv], w),
                (b("attn_v"), vec![e, kv], w),
                (b("attn_output"), vec![e, e], w),
                (b("ffn_norm"), vec![e], 0),
                (b("ffn_gate"), vec![e, ff], w),
                (b("ffn_up"), vec![e, ff], w),
                (b("ffn_down"), vec![ff, e], w),
            ]);
        }
        t
    }

    pub fn tensor_bytes(&self) -> u64 {
        self.tensors()
            .iter()
            .map(|(_, dims, ty)| {
                let n: u64 = dims.iter().product();
                types::tensor_bytes(*ty, n).expect("a whole number of blocks")
            })
            .sum()
    }

    /// Writes the header and makes the file as long as its tensors say (sparse: no data is
    /// written, so no disk is used).
    pub fn write(&self, path: &Path) {
        let mut b = Builder::default();
        b.kv_str("general.architecture", self.arch);
        let a = self.arch;
        b.kv_u32(&format!("{a}.block_count"), self.n_layer);
        b.kv_u32(&format!("{a}.embedding_length"), self.n_embd);
        b.kv_u32(&format!("{a}.attention.head_count"), self.n_head);
        b.kv_u32(&format!("{a}.attention.head_count_kv"), self.n_head_kv);
        b.kv_u32(&format!("{a}.feed_forward_length"), self.n_ff);
        b.kv_u32(&format!("{a}.context_length"), self.n_ctx_train);
        b.kv_token_count("tokenizer.ggml.tokens", self.n_vocab);
        for (name, dims, ty) in self.tensors() {
            b.tensor(&name, &dims, ty);
        }
        b.write_sparse(path);
    }
}

/// GGUF v3 bytes, laid out as the format says.
#[derive(Default)]
struct Builder {
    kv: Vec<u8>,
    n_kv: u64,
    tensors: Vec<u8>,
    n_tensors: u64,
    data: u64,
}

impl Builder {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    fn kv_u32(&mut self, key: &str, v: u64) {
        Self::string(&mut self.kv, key);
        self.kv.extend(4u32.to_le_bytes());
        self.kv
            .extend(u32::try_from(v).expect("fits u32").to_le_bytes());
        self.n_kv += 1;
    }

    fn kv_str(&mut self, key: &str, v: &str) {
        Self::string(&mut self.kv, key);
        self.kv.extend(8u32.to_le_bytes());
        Self::string(&mut self.kv, v);
        self.n_kv += 1;
    }

    /// A string array of `n` one-byte tokens (the reader keeps only the length of a long one).
    fn kv_token_count(&mut self, key: &str, n: u64) {
        Self::string(&mut self.kv, key);
        self.kv.extend(9u32.to_le_bytes());
        self.kv.extend(8u32.to_le_bytes());
        self.kv.extend(n.to_le_bytes());
        for _ in 0..n {
            Self::string(&mut self.kv, "t");
        }
        self.n_kv += 1;
    }

    fn tensor(&mut self, name: &str, dims: &[u64], type_id: u32) {
        let elements: u64 = dims.iter().product();
        let bytes = types::tensor_bytes(type_id, elements).expect("test tensor");
        Self::string(&mut self.tensors, name);
        self.tensors.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.tensors.extend(d.to_le_bytes());
        }
        self.tensors.extend(type_id.to_le_bytes());
        self.tensors.extend(self.data.to_le_bytes());
        self.data = (self.data + bytes).div_ceil(32) * 32;
        self.n_tensors += 1;
    }

    fn write_sparse(&self, path: &Path) {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(self.n_tensors.to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        out.extend(&self.tensors);
        let start = (out.len() as u64).div_ceil(32) * 32;
        std::fs::write(path, &out).expect("write the header");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("reopen");
        f.set_len(start + self.data).expect("extend sparsely");
    }
}

/// A 2-layer llama GGUF of a few hundred KiB, as bytes.
pub fn tiny_gguf() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("t.gguf");
    tiny_shape().write(&path);
    std::fs::read(&path).expect("read back")
}

pub fn tiny_shape() -> Shape {
    Shape {
        arch: "llama",
        n_layer: 2,
        n_embd: 256,
        n_head: 4,
        n_head_kv: 2,
        n_ff: 512,
        n_vocab: 300,
        n_ctx_train: 8192,
        weight_type: 8,
        embd_type: 8,
    }
}

/// A stand-in digest: 64 hex digits from the bytes (Ollama does not check a blob's hash when
/// it loads it, so the store only needs names of the right form).
pub fn digest_of(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}").repeat(4)
}

/// An Ollama store in a temporary folder.
pub struct FakeStore {
    dir: tempfile::TempDir,
}

impl FakeStore {
    pub fn new() -> FakeStore {
        FakeStore {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn blob(&self, bytes: &[u8]) -> PathBuf {
        self.root()
            .join("blobs")
            .join(format!("sha256-{}", digest_of(bytes)))
    }

    /// Writes `layers` as blobs and a manifest `NAMESPACE/MODEL:TAG` listing them.
    pub fn pull(&self, namespace_model: &str, tag: &str, layers: &[(&str, &[u8])]) {
        std::fs::create_dir_all(self.root().join("blobs")).expect("blobs");
        let mut listed = Vec::new();
        for (media, bytes) in layers {
            std::fs::write(self.blob(bytes), bytes).expect("blob");
            listed.push(format!(
                r#"{{"mediaType":"{media}","digest":"sha256:{}","size":{}}}"#,
                digest_of(bytes),
                bytes.len()
            ));
        }
        self.write_manifest(namespace_model, tag, &listed);
    }

    /// Like [`FakeStore::pull`] for a GGUF already at `path` (a sparse file is not copied:
    /// it is moved into the blobs folder).
    pub fn pull_file(
        &self,
        namespace_model: &str,
        tag: &str,
        path: &Path,
        extra: &[(&str, &[u8])],
    ) {
        std::fs::create_dir_all(self.root().join("blobs")).expect("blobs");
        let digest = digest_of(path.to_string_lossy().as_bytes());
        std::fs::rename(
            path,
            self.root().join("blobs").join(format!("sha256-{digest}")),
        )
        .expect("move the model into the store");
        let mut listed = vec![format!(
            r#"{{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:{digest}"}}"#
        )];
        for (media, bytes) in extra {
            std::fs::write(self.blob(bytes), bytes).expect("blob");
            listed.push(format!(
                r#"{{"mediaType":"{media}","digest":"sha256:{}"}}"#,
                digest_of(bytes)
            ));
        }
        self.write_manifest(namespace_model, tag, &listed);
    }

    fn write_manifest(&self, namespace_model: &str, tag: &str, layers: &[String]) {
        let dir = self
            .root()
            .join("manifests/registry.ollama.ai")
            .join(namespace_model);
        std::fs::create_dir_all(&dir).expect("manifest dir");
        let text = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:{}","size":2}},"layers":[{}]}}"#,
            digest_of(b"{}"),
            layers.join(",")
        );
        std::fs::write(dir.join(tag), text).expect("manifest");
    }
}
