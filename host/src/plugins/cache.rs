//! Compiled plugins on disk, so that a restart does not compile again.
//!
//! Key: `<sha256 of the component>-<engine fingerprint>.cwasm`. The
//! fingerprint covers wasmtime's version and every compilation setting, so a
//! host upgrade or a different configuration simply misses the cache.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of precompiled components for one engine.
#[derive(Debug)]
pub(crate) struct CompiledCache {
    dir: PathBuf,
    engine_fingerprint: String,
}

impl CompiledCache {
    /// Uses (and creates) `dir`. It must be writable only by the host's
    /// user: its files are loaded as machine code (see [`Self::load`]).
    pub fn open(dir: &Path, engine_fingerprint: String) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            engine_fingerprint,
        })
    }

    /// Where the component with this SHA-256 (hex) is cached.
    pub fn path_for(&self, sha256_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256_hex}-{}.cwasm", self.engine_fingerprint))
    }

    /// The cached compilation, or `None` when there is none or it cannot be
    /// loaded (truncated, damaged, from another engine); the caller then
    /// compiles and overwrites it.
    pub fn load(&self, engine: &Engine, sha256_hex: &str) -> Option<Component> {
        let path = self.path_for(sha256_hex);
        if !path.exists() {
            return None;
        }
        // SAFETY: `deserialize_file` maps the file and runs its code without
        // being able to check that code. That is sound here because only
        // this runtime writes this directory: the file is the output of
        // `Component::serialize` for these very bytes (its name holds their
        // SHA-256) on an engine with the same compatibility fingerprint,
        // written whole by `store` (temporary file, then rename) so that a
        // crash cannot leave a torn file under the final name. wasmtime still
        // checks the file's format, version and engine settings and rejects
        // a foreign or damaged header, which lands in the `Err` arm below.
        // What stays assumed is that nobody else can write the directory.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(
                    path = %path.display(),
                    "cached plugin compilation cannot be loaded, compiling again: {err}"
                );
                None
            }
        }
    }

    /// Writes the compilation atomically: readers see the old file or the
    /// new one, never a partial one.
    pub fn store(&self, component: &Component, sha256_hex: &str) -> wasmtime::Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let bytes = component.serialize()?;
        let path = self.path_for(sha256_hex);
        let temp = self.dir.join(format!(
            ".{sha256_hex}.{}.{}.tmp",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        Ok(written?)
    }
}
