//! Loading a stack from a file: a `.rs` stack file (compiled once into a small cached program
//! that prints the stack's JSON) or a `.json` file written by `infra synth`.
//!
//! The generated program lives in a cache directory (`$INFRA_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/infra`, else `~/.cache/infra`):
//!
//! ```text
//! CACHE/stacks/KEY/{Cargo.toml, Cargo.lock, src/main.rs}   one tiny project per stack file version
//! CACHE/target/                                            shared, so infra-core compiles once
//! CACHE/bin/KEY                                            the built program; present = cache hit
//! ```
//!
//! `main.rs` includes the user's file with `#[path = "/abs/file.rs"] mod stack_file;`, so
//! compiler errors point at the user's file and line. KEY hashes the file's bytes and path and
//! this infra's version and executable, so an unchanged file runs its cached program without
//! invoking cargo at all.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use infra_core::stack::StackJsonError;
use infra_core::Stack;
use sha2::{Digest, Sha256};

/// Where infra-core's sources are: the generated project depends on them by path.
const CORE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core");
/// The lock file infra itself was built with, so stack programs use the same (already
/// downloaded) dependency versions and build without network access.
const WORKSPACE_LOCK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"));

/// Errors loading a stack file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read stack file `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{}` is not a stack file: expected a `.rs` file defining `pub fn stack() -> Stack`, or a `.json` file written by `infra synth`",
        path.display()
    )]
    Extension { path: PathBuf },
    #[error("`{}` does not define `pub fn stack() -> infra_core::Stack`", path.display())]
    MissingStackFn { path: PathBuf },
    #[error("`{}` is not a stack written by `infra synth`", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: StackJsonError,
    },
    #[error(
        "no cache directory for compiled stack files: set INFRA_CACHE_DIR, XDG_CACHE_HOME or HOME"
    )]
    NoCacheDir,
    #[error("cannot write the build of `{}` under `{}`", path.display(), cache.display())]
    Cache {
        path: PathBuf,
        cache: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot run `{}` to compile `{}` (is a Rust toolchain installed?)", cargo.to_string_lossy(), path.display())]
    Cargo {
        path: PathBuf,
        cargo: OsString,
        #[source]
        source: io::Error,
    },
    #[error("could not compile stack file `{}`", path.display())]
    Compile { path: PathBuf },
    #[error("cannot run the compiled program of `{}`", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`stack()` in `{}` failed ({status}){}", path.display(), indent_stderr(stderr))]
    Run {
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("the stack JSON printed by `{}` is not valid", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: StackJsonError,
    },
}

fn indent_stderr(stderr: &str) -> String {
    let text = stderr.trim_end();
    if text.is_empty() {
        return String::new();
    }
    let mut out = String::from(":");
    for line in text.lines() {
        out.push_str("\n    ");
        out.push_str(line);
    }
    out
}

/// What loading reports while it works: the CLI prints these, an embedder may ignore them.
pub trait LoadReporter {
    /// A stack file is being compiled (it was not in the cache).
    fn compiling(&self, _path: &Path) {}
    /// The compiler's diagnostics for the user's file (warnings on success, errors on failure),
    /// with the generated project's noise removed.
    fn compiler_output(&self, _text: &str) {}
}

/// A [`LoadReporter`] that drops everything.
pub struct Quiet;

impl LoadReporter for Quiet {}

/// Loads stack files, compiling `.rs` ones through a cache.
#[derive(Clone, Debug)]
pub struct Loader {
    cache_dir: PathBuf,
    cargo: OsString,
    color: bool,
}

impl Loader {
    /// A loader with the cache directory from the environment (`$INFRA_CACHE_DIR`,
    /// `$XDG_CACHE_HOME/infra`, `~/.cache/infra`) and cargo from `$CARGO` or `PATH`.
    pub fn from_env() -> Result<Loader, LoadError> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let cache_dir = if let Some(dir) = non_empty("INFRA_CACHE_DIR") {
            PathBuf::from(dir)
        } else if let Some(dir) = non_empty("XDG_CACHE_HOME") {
            PathBuf::from(dir).join("infra")
        } else if let Some(home) = non_empty("HOME") {
            PathBuf::from(home).join(".cache").join("infra")
        } else {
            return Err(LoadError::NoCacheDir);
        };
        Ok(Loader {
            cache_dir,
            cargo: non_empty("CARGO").unwrap_or_else(|| "cargo".into()),
            color: false,
        })
    }

    /// Use this cache directory.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Loader {
        self.cache_dir = dir.into();
        self
    }

    /// Ask cargo for coloured diagnostics.
    pub fn with_color(mut self, color: bool) -> Loader {
        self.color = color;
        self
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Load the stack in `path`: `.json` is parsed, `.rs` compiled (or taken from the cache)
    /// and run.
    pub fn load(&self, path: &Path, reporter: &dyn LoadReporter) -> Result<Stack, LoadError> {
        let read = |p: &Path| {
            fs::read(p).map_err(|source| LoadError::Read {
                path: p.to_path_buf(),
                source,
            })
        };
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                let bytes = read(path)?;
                let text = String::from_utf8_lossy(&bytes);
                Stack::from_json(&text).map_err(|source| LoadError::Json {
                    path: path.to_path_buf(),
                    source,
                })
            }
            Some("rs") => {
                let bytes = read(path)?;
                let binary = self.compiled(path, &bytes, reporter)?;
                self.run(path, &binary)
            }
            _ => Err(LoadError::Extension {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The cached program for this version of the file, compiling it when missing.
    fn compiled(
        &self,
        path: &Path,
        bytes: &[u8],
        reporter: &dyn LoadReporter,
    ) -> Result<PathBuf, LoadError> {
        let absolute = fs::canonicalize(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let key = cache_key(&absolute, bytes);
        let binary = self
            .cache_dir
            .join("bin")
            .join(format!("{key}{}", std::env::consts::EXE_SUFFIX));
        if binary.is_file() {
            return Ok(binary);
        }
        if !String::from_utf8_lossy(bytes).contains("fn stack") {
            return Err(LoadError::MissingStackFn {
                path: path.to_path_buf(),
            });
        }
        reporter.compiling(path);
        let cache_error = |source: io::Error| LoadError::Cache {
            path: path.to_path_buf(),
            cache: self.cache_dir.clone(),
            source,
        };
        let name = format!("infra-stack-{key}");
        let project = self.cache_dir.join("stacks").join(&key);
        fs::create_dir_all(project.join("src")).map_err(cache_error)?;
        fs::create_dir_all(self.cache_dir.join("bin")).map_err(cache_error)?;
        write_atomic(&project.join("Cargo.toml"), &manifest(&name)).map_err(cache_error)?;
        write_atomic(&project.join("src/main.rs"), &main_rs(&absolute)).map_err(cache_error)?;
        if !project.join("Cargo.lock").exists() {
            write_atomic(&project.join("Cargo.lock"), WORKSPACE_LOCK).map_err(cache_error)?;
        }

        let target = self.cache_dir.join("target");
        let mut cargo = Command::new(&self.cargo);
        cargo
            .arg("build")
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(project.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .arg(if self.color {
                "--color=always"
            } else {
                "--color=never"
            });
        // When infra itself runs under cargo (tests, `cargo run`), do not inherit its build
        // settings: the generated project has its own target directory and manifest.
        for var in [
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET_DIR",
            "CARGO_MANIFEST_DIR",
        ] {
            cargo.env_remove(var);
        }
        let output = cargo.output().map_err(|source| LoadError::Cargo {
            path: path.to_path_buf(),
            cargo: self.cargo.clone(),
            source,
        })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let shown = filter_cargo_output(&stderr, &name, &absolute, path);
        if !shown.trim().is_empty() {
            reporter.compiler_output(&shown);
        }
        if !output.status.success() {
            return Err(LoadError::Compile {
                path: path.to_path_buf(),
            });
        }
        let built = target
            .join("debug")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        let staging = binary.with_extension(format!("tmp{}", std::process::id()));
        fs::copy(&built, &staging).map_err(cache_error)?;
        fs::rename(&staging, &binary).map_err(cache_error)?;
        Ok(binary)
    }

    fn run(&self, path: &Path, binary: &Path) -> Result<Stack, LoadError> {
        let output = Command::new(binary)
            .output()
            .map_err(|source| LoadError::Spawn {
                path: path.to_path_buf(),
                source,
            })?;
        if !output.status.success() {
            return Err(LoadError::Run {
                path: path.to_path_buf(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Stack::from_json(&String::from_utf8_lossy(&output.stdout)).map_err(|source| {
            LoadError::Output {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

/// Hex key of one version of a stack file, for one build of infra.
fn cache_key(absolute: &Path, bytes: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"infra ");
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    // A rebuilt infra may carry a changed infra-core: its stack programs are rebuilt too.
    let exe_stamp = std::env::current_exe()
        .and_then(fs::metadata)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hash.update(exe_stamp.to_le_bytes());
    hash.update([0]);
    hash.update(absolute.to_string_lossy().as_bytes());
    hash.update([0]);
    hash.update(bytes);
    hex::encode(&hash.finalize()[..12])
}

fn manifest(name: &str) -> String {
    format!(
        r#"# Generated by infra: the program that prints one stack file's JSON.
[package]
name = "{name}"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
infra-core = {{ path = {core:?} }}

[profile.dev]
debug = false

[workspace]
"#,
        core = CORE_PATH
    )
}

fn main_rs(absolute: &Path) -> String {
    format!(
        r#"// Generated by infra: prints the stack's JSON.
#[path = {path:?}]
mod stack_file;

fn main() {{
    println!("{{}}", stack_file::stack().to_json());
}}
"#,
        path = absolute.to_string_lossy()
    )
}

/// Write through a temporary file and a rename, so a concurrent reader (another `infra` on the
/// same stack file) never sees half a file.
fn write_atomic(path: &Path, contents: &str) -> io::Result<()> {
    if fs::read_to_string(path).is_ok_and(|existing| existing == contents) {
        return Ok(());
    }
    let staging = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&staging, contents)?;
    fs::rename(&staging, path)
}

/// Cargo's stderr without the generated project's noise, with the user's path as they typed it.
fn filter_cargo_output(stderr: &str, package: &str, absolute: &Path, shown_as: &Path) -> String {
    let absolute = absolute.to_string_lossy();
    let shown_as = shown_as.to_string_lossy();
    let mut out = String::new();
    for line in stderr.lines() {
        let plain = strip_ansi(line);
        let trimmed = plain.trim_start();
        let noise = [
            "Compiling ",
            "Finished ",
            "Blocking waiting",
            "Locking ",
            "Adding ",
            "Updating ",
            "Downloading ",
            "Downloaded ",
        ]
        .iter()
        .any(|prefix| trimmed.starts_with(prefix))
            || (trimmed.contains(package)
                && (trimmed.starts_with("error: could not compile")
                    || trimmed.starts_with("warning: `")));
        if noise {
            continue;
        }
        out.push_str(&line.replace(absolute.as_ref(), &shown_as));
        out.push('\n');
    }
    out
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_drops_cargo_noise_and_shows_the_users_path() {
        let stderr = "\
   Compiling infra-core v0.1.0 (/src/core)
   Compiling infra-stack-abc v0.0.0 (/cache/stacks/abc)
error[E0425]: cannot find value `vpcc` in this scope
  --> /home/me/stacks/shop.rs:12:20
   |
12 |     s.add(\"a\", Subnet::public(&vpcc, \"10.0.1.0/24\", \"ap-northeast-2a\"));
   |                                 ^^^^ help: a local variable with a similar name exists: `vpc`

error: could not compile `infra-stack-abc` (bin \"infra-stack-abc\") due to 1 previous error
";
        let shown = filter_cargo_output(
            stderr,
            "infra-stack-abc",
            Path::new("/home/me/stacks/shop.rs"),
            Path::new("stacks/shop.rs"),
        );
        assert_eq!(
            shown,
            "\
error[E0425]: cannot find value `vpcc` in this scope
  --> stacks/shop.rs:12:20
   |
12 |     s.add(\"a\", Subnet::public(&vpcc, \"10.0.1.0/24\", \"ap-northeast-2a\"));
   |                                 ^^^^ help: a local variable with a similar name exists: `vpc`

"
        );
    }

    #[test]
    fn strip_ansi_keeps_the_text() {
        assert_eq!(
            strip_ansi("\x1b[1m\x1b[32m   Compiling\x1b[0m x"),
            "   Compiling x"
        );
    }

    #[test]
    fn cache_key_changes_with_content_and_path() {
        let a = cache_key(Path::new("/s/a.rs"), b"fn stack() {}");
        assert_eq!(a, cache_key(Path::new("/s/a.rs"), b"fn stack() {}"));
        assert_ne!(a, cache_key(Path::new("/s/a.rs"), b"fn stack() { }"));
        assert_ne!(a, cache_key(Path::new("/s/b.rs"), b"fn stack() {}"));
    }

    #[test]
    fn generated_main_includes_the_file_by_absolute_path() {
        let main = main_rs(Path::new("/home/me/my \"stacks\"/shop.rs"));
        assert!(main.contains(r#"#[path = "/home/me/my \"stacks\"/shop.rs"]"#));
        assert!(main.contains("stack_file::stack().to_json()"));
    }
}
