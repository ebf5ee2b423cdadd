//! Ollama's model store: a name (`llama3.2`, `gemma3:12b`, `user/model:tag`,
//! `hf.co/org/repo:Q4_K_M`) to the GGUF blob Ollama would load, with its projector, adapters
//! and the model's own parameters (docs/ollama-host-ram.md §5).
//!
//! The store is `$OLLAMA_MODELS`, else `~/.ollama/models`. A name is completed with Ollama's
//! defaults (host `registry.ollama.ai`, namespace `library`, tag `latest`) and its manifest is
//! `manifests/HOST/NAMESPACE/MODEL/TAG`, a JSON list of layers; the layer of media type
//! `application/vnd.ollama.image.model` is the GGUF, at `blobs/sha256-<hex>`. A path to a
//! `.gguf` file is taken as it is.
//!
//! Everything read is bounded and checked: a name part is what Ollama itself accepts (so no
//! `..` or `/` reaches a path), digests must be `sha256:` + 64 hex digits, and a manifest or
//! params file over [`MAX_JSON_BYTES`] or not JSON is one error.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Manifests and params files are a few hundred bytes; anything this large is not one.
pub const MAX_JSON_BYTES: u64 = 1 << 20;

const MODEL_LAYER: &str = "application/vnd.ollama.image.model";
const PROJECTOR_LAYER: &str = "application/vnd.ollama.image.projector";
const ADAPTER_LAYER: &str = "application/vnd.ollama.image.adapter";
const PARAMS_LAYER: &str = "application/vnd.ollama.image.params";
const DRAFT_LAYER: &str = "application/vnd.ollama.image.draft";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("no Ollama model store: OLLAMA_MODELS is unset and there is no home folder to find ~/.ollama/models in")]
    NoStore,
    #[error("{name:?} is not an Ollama model name: {reason}")]
    BadName { name: String, reason: String },
    #[error("model {name:?} is not in the Ollama store: no manifest at {}", path.display())]
    NotPulled { name: String, path: PathBuf },
    #[error("{}: {reason}", path.display())]
    Bad { path: PathBuf, reason: String },
}

/// The options a model's params layer sets that change host memory (`api.Options` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    pub num_ctx: Option<u64>,
    pub num_batch: Option<u64>,
    /// -1: Ollama decides.
    pub num_gpu: Option<i64>,
    pub use_mmap: Option<bool>,
}

/// A model as Ollama would load it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    /// The name as given, or the file's name.
    pub name: String,
    /// The GGUF file: a blob of the store, or the path given.
    pub gguf: PathBuf,
    /// The first projector layer (Ollama passes only the first).
    pub projector: Option<PathBuf>,
    pub adapters: Vec<PathBuf>,
    pub draft: Option<PathBuf>,
    pub params: Params,
    /// The manifest read, for reports; `None` for a `.gguf` path.
    pub manifest: Option<PathBuf>,
}

/// The store Ollama uses with this environment: `OLLAMA_MODELS` (trimmed of spaces and
/// quotes, as Ollama reads its variables), else `$HOME/.ollama/models`.
pub fn models_dir(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, StoreError> {
    let var = |k: &str| {
        env(k)
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(dir) = var("OLLAMA_MODELS") {
        return Ok(PathBuf::from(dir));
    }
    var("HOME")
        .map(|home| Path::new(&home).join(".ollama").join("models"))
        .ok_or(StoreError::NoStore)
}

/// Finds what Ollama would load for `spec`: an existing file is a GGUF given by path;
/// anything else is a model name looked up in `store`.
pub fn resolve(spec: &str, store: &Path) -> Result<StoredModel, StoreError> {
    let as_path = Path::new(spec);
    if std::fs::metadata(as_path).is_ok_and(|m| m.is_file()) {
        return Ok(gguf_file(as_path));
    }
    let name = Name::parse(spec)?;
    let manifest_path = store
        .join("manifests")
        .join(&name.host)
        .join(&name.namespace)
        .join(&name.model)
        .join(&name.tag);
    if std::fs::symlink_metadata(&manifest_path).is_err() {
        return Err(StoreError::NotPulled {
            name: spec.to_string(),
            path: manifest_path,
        });
    }
    let text = read_small(&manifest_path)?;
    let bad = |reason: String| StoreError::Bad {
        path: manifest_path.clone(),
        reason,
    };
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| bad(format!("not an Ollama manifest: {e}")))?;
    let blobs = store.join("blobs");
    if let Some(config) = &manifest.config {
        if !config.digest.is_empty() {
            blob_path(&blobs, &config.digest).map_err(bad)?;
        }
    }
    let mut found = StoredModel {
        name: spec.to_string(),
        gguf: PathBuf::new(),
        projector: None,
        adapters: Vec::new(),
        draft: None,
        params: Params::default(),
        manifest: Some(manifest_path.clone()),
    };
    let mut has_model = false;
    // Every layer's digest is checked, as Ollama does before it looks at the media type.
    for layer in &manifest.layers {
        let blob = blob_path(&blobs, &layer.digest).map_err(bad)?;
        match layer.media_type.as_str() {
            // The last model layer wins, as in Ollama.
            MODEL_LAYER => {
                found.gguf = blob;
                has_model = true;
            }
            PROJECTOR_LAYER => {
                found.projector.get_or_insert(blob);
            }
            ADAPTER_LAYER => found.adapters.push(blob),
            DRAFT_LAYER => found.draft = Some(blob),
            PARAMS_LAYER => found.params = read_params(&blob)?,
            _ => {}
        }
    }
    if !has_model {
        return Err(bad(format!(
            "no layer of media type {MODEL_LAYER}: not a GGUF model Ollama runs with llama.cpp"
        )));
    }
    Ok(found)
}

/// A GGUF file given by path: no projector, adapters or params.
pub fn gguf_file(path: &Path) -> StoredModel {
    StoredModel {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
        gguf: path.to_path_buf(),
        projector: None,
        adapters: Vec::new(),
        draft: None,
        params: Params::default(),
        manifest: None,
    }
}

/// A model name with Ollama's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub host: String,
    pub namespace: String,
    pub model: String,
    pub tag: String,
}

impl Name {
    /// Splits `[[HOST/]NAMESPACE/]MODEL[:TAG]` the way Ollama does and checks every part
    /// with Ollama's rules (types/model/name.go:146-176, 333-376@v0.32.15): 1–80 characters (the
    /// host up to 350), starting with a letter, digit or `_`, then those and `-`, `_`, `.`
    /// (no `.` in a namespace; `:` only in a host).
    pub fn parse(spec: &str) -> Result<Name, StoreError> {
        let bad = |reason: &str| StoreError::BadName {
            name: spec.to_string(),
            reason: reason.to_string(),
        };
        let mut rest = spec;
        let mut tag = "latest";
        if rest.rfind(':').map(|i| i as isize) > rest.rfind('/').map(|i| i as isize) {
            let (before, after) = rest.rsplit_once(':').unwrap_or((rest, ""));
            rest = before;
            tag = after;
        }
        let mut parts: Vec<&str> = rest.split('/').collect();
        let model = parts.pop().unwrap_or("");
        let namespace = parts.pop().unwrap_or("library");
        let host = match parts.len() {
            0 => "registry.ollama.ai",
            1 => parts[0],
            _ => return Err(bad("more than HOST/NAMESPACE/MODEL:TAG")),
        };
        // `https://host/…`: the scheme is not part of the path.
        let host = host.split_once("://").map_or(host, |(_, h)| h);
        let checks = [
            (host, Part::Host, "host"),
            (namespace, Part::Namespace, "namespace"),
            (model, Part::Other, "model"),
            (tag, Part::Other, "tag"),
        ];
        for (text, kind, what) in checks {
            if let Err(reason) = check_part(text, kind) {
                return Err(bad(&format!("its {what} {text:?} {reason}")));
            }
        }
        Ok(Name {
            host: host.to_string(),
            namespace: namespace.to_string(),
            model: model.to_string(),
            tag: tag.to_string(),
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Host,
    Namespace,
    Other,
}

fn check_part(s: &str, kind: Part) -> Result<(), &'static str> {
    let max = if kind == Part::Host { 350 } else { 80 };
    if s.is_empty() || s.len() > max {
        return Err("is empty or too long");
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (i, c) in s.chars().enumerate() {
        let ok = match c {
            _ if word(c) => true,
            _ if i == 0 => false,
            '-' => true,
            '.' => kind != Part::Namespace,
            ':' => kind == Part::Host,
            _ => false,
        };
        if !ok {
            return Err("has a character Ollama does not accept there");
        }
    }
    Ok(())
}

/// `blobs/sha256-<hex>` for a digest `sha256:<64 hex>` (or `sha256-<64 hex>`); anything else
/// is refused, as Ollama refuses it (manifest/paths.go:40-60@v0.32.15).
fn blob_path(blobs: &Path, digest: &str) -> Result<PathBuf, String> {
    let hex = digest
        .strip_prefix("sha256:")
        .or_else(|| digest.strip_prefix("sha256-"));
    match hex {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(blobs.join(format!("sha256-{h}")))
        }
        _ => Err(format!(
            "layer digest {:?} is not sha256: followed by 64 hex digits",
            digest.chars().take(80).collect::<String>()
        )),
    }
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    config: Option<Layer>,
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    digest: String,
}

/// Reads a small regular file (a FIFO would block; a huge file is no manifest).
fn read_small(path: &Path) -> Result<String, StoreError> {
    let bad = |reason: String| StoreError::Bad {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.len() > MAX_JSON_BYTES {
        return Err(bad(format!(
            "{} bytes: larger than any Ollama manifest or params file ({MAX_JSON_BYTES} bytes at most)",
            meta.len()
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut text = String::new();
    file.take(MAX_JSON_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("cannot read as text: {e}")))?;
    if text.len() as u64 > MAX_JSON_BYTES {
        return Err(bad("grew past the size limit while read".into()));
    }
    Ok(text)
}

/// The params layer: a JSON object of `api.Options` values. Only the keys that change host
/// memory are kept; a wrong type for one of them is an error, as it is for Ollama's
/// `Options.FromMap`.
fn read_params(path: &Path) -> Result<Params, StoreError> {
    let text = read_small(path)?;
    let bad = |reason: String| StoreError::Bad {
        path: path.to_path_buf(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("params are not JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad("params are not a JSON object".into()))?;
    // Go converts a JSON number to an integer option by truncation.
    let int = |key: &str| -> Result<Option<i64>, StoreError> {
        match obj.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                        .map(|f| f.trunc() as i64)
                })
                .map(Some)
                .ok_or_else(|| bad(format!("params: {key} is {v}, not an integer"))),
        }
    };
    let count = |key: &str| -> Result<Option<u64>, StoreError> {
        int(key)?
            .map(|n| u64::try_from(n).map_err(|_| bad(format!("params: {key} {n} is negative"))))
            .transpose()
    };
    let use_mmap = match obj.get("use_mmap") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Bool(b)) => Some(*b),
        Some(v) => return Err(bad(format!("params: use_mmap is {v}, not true or false"))),
    };
    Ok(Params {
        num_ctx: count("num_ctx")?,
        num_batch: count("num_batch")?,
        num_gpu: int("num_gpu")?,
        use_mmap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::ollama::test_util::{tiny_gguf, FakeStore};

    #[test]
    fn the_store_is_ollama_models_or_the_home_folder() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            models_dir(&env(&[
                ("OLLAMA_MODELS", " '/srv/models' "),
                ("HOME", "/h")
            ])),
            Ok(PathBuf::from("/srv/models"))
        );
        assert_eq!(
            models_dir(&env(&[("HOME", "/home/u")])),
            Ok(PathBuf::from("/home/u/.ollama/models"))
        );
        assert_eq!(models_dir(&env(&[])), Err(StoreError::NoStore));
    }

    #[test]
    fn names_are_completed_and_checked_like_ollama() {
        let n = Name::parse("llama3.2").unwrap();
        assert_eq!(
            (
                n.host.as_str(),
                n.namespace.as_str(),
                n.model.as_str(),
                n.tag.as_str()
            ),
            ("registry.ollama.ai", "library", "llama3.2", "latest")
        );
        let n = Name::parse("hf.co/bartowski/Qwen3-8B-GGUF:Q4_K_M").unwrap();
        assert_eq!(
            (n.host.as_str(), n.namespace.as_str(), n.tag.as_str()),
            ("hf.co", "bartowski", "Q4_K_M")
        );
        let n = Name::parse("localhost:5000/me/m:v1").unwrap();
        assert_eq!((n.host.as_str(), n.tag.as_str()), ("localhost:5000", "v1"));
        for hostile in [
            "../../../etc/passwd",
            "..",
            "a/../b",
            "x:../../y",
            "",
            "model:",
            "a/b/c/d",
            "ns.x/model",
            "mo\0del",
            "m\u{e9}",
            &"m".repeat(81),
        ] {
            assert!(
                matches!(Name::parse(hostile), Err(StoreError::BadName { .. })),
                "{hostile:?}"
            );
        }
    }

    #[test]
    fn resolves_the_model_projector_and_params_layers() {
        let store = FakeStore::new();
        let gguf = tiny_gguf();
        let proj = b"GGUF-projector".to_vec();
        let params = br#"{"num_ctx": 8192, "use_mmap": false, "stop": ["<end>"]}"#.to_vec();
        store.pull(
            "library/qwen2.5vl",
            "3b",
            &[
                (MODEL_LAYER, &gguf),
                (PROJECTOR_LAYER, &proj),
                (PARAMS_LAYER, &params),
                ("application/vnd.ollama.image.template", b"{{ .Prompt }}"),
            ],
        );
        let m = resolve("qwen2.5vl:3b", store.root()).unwrap();
        assert_eq!(m.gguf, store.blob(&gguf));
        assert_eq!(m.projector, Some(store.blob(&proj)));
        assert_eq!(
            m.params,
            Params {
                num_ctx: Some(8192),
                use_mmap: Some(false),
                ..Params::default()
            }
        );
        assert!(m.manifest.unwrap().ends_with("library/qwen2.5vl/3b"));
        // The GGUF the store points at is one the header reader reads.
        assert!(crate::gguf::read_header(&m.gguf).is_ok());
        // A tag not pulled is named with the manifest path looked for.
        let err = resolve("qwen2.5vl:7b", store.root()).unwrap_err();
        assert!(matches!(err, StoreError::NotPulled { .. }), "{err}");
        assert!(err.to_string().contains("qwen2.5vl/7b"), "{err}");
    }

    #[test]
    fn a_gguf_path_is_taken_as_it_is() {
        let store = FakeStore::new();
        let path = store.root().join("my.gguf");
        std::fs::write(&path, tiny_gguf()).unwrap();
        let m = resolve(path.to_str().unwrap(), Path::new("/nonexistent")).unwrap();
        assert_eq!((m.gguf, m.name.as_str()), (path, "my.gguf"));
    }

    #[test]
    fn hostile_manifests_are_one_error() {
        let store = FakeStore::new();
        let manifest = |name: &str, text: &[u8]| {
            let dir = store
                .root()
                .join("manifests/registry.ollama.ai/library")
                .join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("latest"), text).unwrap();
            resolve(name, store.root()).unwrap_err()
        };
        let is_bad = |e: &StoreError, needle: &str| {
            matches!(e, StoreError::Bad { .. }) && e.to_string().contains(needle)
        };
        let e = manifest("notjson", b"{ layers: [");
        assert!(is_bad(&e, "not an Ollama manifest"), "{e}");
        let e = manifest("nomodel", br#"{"layers": []}"#);
        assert!(is_bad(&e, "no layer of media type"), "{e}");
        let traversal = format!(
            r#"{{"layers": [{{"mediaType": "{MODEL_LAYER}", "digest": "sha256:../../../../etc/passwd"}}]}}"#
        );
        let e = manifest("traversal", traversal.as_bytes());
        assert!(is_bad(&e, "not sha256:"), "{e}");
        let short = format!(
            r#"{{"layers": [{{"mediaType": "x", "digest": "sha256:{}"}}]}}"#,
            "a".repeat(63)
        );
        assert!(is_bad(&manifest("short", short.as_bytes()), "not sha256:"));
        let e = manifest("typed", br#"{"layers": 7}"#);
        assert!(is_bad(&e, "not an Ollama manifest"), "{e}");
        // Huge: refused by its size, before it is read.
        let dir = store
            .root()
            .join("manifests/registry.ollama.ai/library/huge");
        std::fs::create_dir_all(&dir).unwrap();
        let f = std::fs::File::create(dir.join("latest")).unwrap();
        f.set_len(1 << 40).unwrap();
        let e = resolve("huge", store.root()).unwrap_err();
        assert!(is_bad(&e, "larger than any Ollama manifest"), "{e}");
        // A directory where the manifest should be.
        std::fs::create_dir_all(
            store
                .root()
                .join("manifests/registry.ollama.ai/library/dir/latest"),
        )
        .unwrap();
        assert!(is_bad(
            &resolve("dir", store.root()).unwrap_err(),
            "not a regular file"
        ));
    }

    #[test]
    fn bad_params_are_one_error() {
        let store = FakeStore::new();
        let gguf = tiny_gguf();
        for (params, needle) in [
            (&br#"{"num_ctx": "big"}"#[..], "not an integer"),
            (br#"{"num_ctx": -5}"#, "negative"),
            (br#"{"use_mmap": "no"}"#, "not true or false"),
            (br#"[1, 2]"#, "not a JSON object"),
            (br#"{"num_ctx": 1e400}"#, "not JSON"),
        ] {
            store.pull(
                "library/p",
                "latest",
                &[(MODEL_LAYER, &gguf), (PARAMS_LAYER, params)],
            );
            let e = resolve("p", store.root()).unwrap_err();
            assert!(e.to_string().contains(needle), "{params:?}: {e}");
        }
        store.pull(
            "library/p",
            "latest",
            &[
                (MODEL_LAYER, &gguf),
                (PARAMS_LAYER, br#"{"num_ctx": 4096.9, "num_gpu": -1}"#),
            ],
        );
        let p = resolve("p", store.root()).unwrap().params;
        assert_eq!((p.num_ctx, p.num_gpu), (Some(4096), Some(-1)));
    }
}
