//! Test helpers: GGUF files of any size as sparse files ([`crate::gguf::builder`] writes the
//! header and sets the length), and an Ollama store in a temporary folder.

use std::path::{Path, PathBuf};

use crate::gguf::builder::{Builder, LlamaShape};
use crate::gguf::types;

/// Writes `shape` as a sparse GGUF file at `path`.
pub fn write(shape: &LlamaShape, path: &Path) {
    Builder::llama(shape)
        .write_sparse(path)
        .expect("write a sparse GGUF");
}

/// A 4096-wide Q4_K llama with as many layers as make its tensors at least `target_bytes`
/// (for cases reported as a file size).
pub fn of_size(target_bytes: u64) -> LlamaShape {
    let mut s = LlamaShape {
        name: "sized".into(),
        layers: 1,
        hidden: 4096,
        heads: 32,
        kv_heads: 8,
        ffn: 14336,
        vocab: 131_072,
        ctx: 131_072,
        type_id: 12,
        embd_type: 12,
    };
    let bytes = |ty: u32, elements: u64| types::tensor_bytes(ty, elements).expect("whole blocks");
    let kv = s.hidden / s.heads * s.kv_heads;
    let per_layer = 2 * bytes(0, s.hidden)
        + bytes(
            s.type_id,
            2 * s.hidden * s.hidden + 2 * s.hidden * kv + 3 * s.hidden * s.ffn,
        );
    let fixed = 2 * bytes(s.embd_type, s.hidden * s.vocab) + bytes(0, s.hidden);
    s.layers = target_bytes
        .saturating_sub(fixed)
        .div_ceil(per_layer)
        .max(1);
    s
}

/// A 2-layer llama GGUF of a few hundred KiB.
pub fn tiny_shape() -> LlamaShape {
    LlamaShape {
        name: "tiny".into(),
        layers: 2,
        hidden: 256,
        heads: 4,
        kv_heads: 2,
        ffn: 512,
        vocab: 300,
        ctx: 8192,
        type_id: 8,
        embd_type: 8,
    }
}

/// [`tiny_shape`] as bytes.
pub fn tiny_gguf() -> Vec<u8> {
    Builder::llama(&tiny_shape()).build()
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
