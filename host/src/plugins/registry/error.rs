//! What can go wrong when uploading, activating or resolving a plugin.

use std::time::Duration;

use crate::plugins::error::PluginError;
use crate::plugins::registry::store::PluginStoreError;

/// An upload was refused, or a registry operation could not be done.
///
/// [`RegistryError::is_refusal`] tells which errors are the upload's fault
/// (API `422 validation-failed`, nothing stored).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The runtime refused the component: not WebAssembly, a core module,
    /// another world, an unsupported SDK, unsatisfied imports, or it did not
    /// compile. The message says how to fix it.
    #[error(transparent)]
    Invalid(#[from] PluginError),

    /// The upload is larger than the configured limit.
    #[error(
        "plugin `{plugin}` is {size} bytes, more than the {limit} bytes this host accepts: \
         build it with `--profile plugin` (opt-level \"s\", LTO, strip)"
    )]
    TooLarge {
        /// The plugin's name.
        plugin: String,
        /// The upload's size.
        size: usize,
        /// The limit.
        limit: usize,
    },

    /// The host trusts signing keys, and the upload carries no signature.
    #[error(
        "plugin `{plugin}` is not signed, and this host only accepts plugins signed by a \
         trusted key: sign it with `rescind plugin sign {plugin} FILE --key KEY` and send the \
         signature (base64, `X-Plugin-Signature` header or `{plugin}.wasm.sig` beside the file)"
    )]
    SignatureMissing {
        /// The plugin's name.
        plugin: String,
    },

    /// The signature is neither 64 bytes nor the base64 text of 64 bytes.
    #[error(
        "the signature of plugin `{plugin}` cannot be read: send the 64-byte ed25519 \
         signature, raw or in base64"
    )]
    SignatureUnreadable {
        /// The plugin's name.
        plugin: String,
    },

    /// The signature does not verify with any trusted key for this name
    /// and these bytes.
    #[error(
        "the signature of plugin `{plugin}` does not verify with any trusted key: it was \
         made by another key, for another plugin name, or the file changed after it was signed"
    )]
    SignatureNotTrusted {
        /// The plugin's name.
        plugin: String,
    },

    /// A trusted key signed the bytes alone, the scheme before signatures
    /// named the plugin: such a signature could be replayed under any name.
    #[error(
        "the signature of plugin `{plugin}` covers the file's bytes alone, not the plugin's \
         name: sign it again with `rescind plugin sign {plugin} FILE --key KEY`"
    )]
    SignatureOverBytesOnly {
        /// The plugin's name.
        plugin: String,
    },

    /// A stored version asked to become active code carries no signature by
    /// a trusted key for its name: it was stored before the host trusted
    /// keys, or signed by a key it no longer trusts.
    #[error(
        "version {version} of plugin `{plugin}` carries no signature by a trusted key, and \
         this host only runs signed plugins: attach one by uploading the same file with its \
         signature (`rescind plugin sign {plugin} FILE --key KEY`, then `rescind plugin push \
         {plugin} FILE --no-activate`), then activate it"
    )]
    UntrustedVersion {
        /// The plugin's name.
        plugin: String,
        /// The version.
        version: String,
    },

    /// Compiling took longer than allowed (a compile bomb, or a far too
    /// large plugin).
    #[error(
        "plugin `{plugin}` did not compile within {limit:?}: make it smaller (fewer or \
         smaller functions)"
    )]
    CompileTimeout {
        /// The plugin's name.
        plugin: String,
        /// The time allowed.
        limit: Duration,
    },

    /// An earlier compilation that ran out of time is still running, and
    /// did not finish while this upload waited for the compiler.
    #[error(
        "the plugin compiler is still busy with an earlier upload that ran out of time; \
         try again in a while"
    )]
    CompilerBusy,

    /// Compiling crashed (a bug in the host or the compiler).
    #[error("compiling plugin `{plugin}` failed inside the host: {reason}")]
    CompileCrashed {
        /// The plugin's name.
        plugin: String,
        /// What happened.
        reason: String,
    },

    /// No plugin of that name was ever uploaded.
    #[error("there is no plugin `{name}`: upload it first")]
    UnknownPlugin {
        /// The name asked for.
        name: String,
    },

    /// The plugin has no version with that hash.
    #[error(
        "plugin `{name}` has no version `{version}`: list its versions with \
         GET /v1/admin/plugins/{name}"
    )]
    UnknownVersion {
        /// The plugin's name.
        name: String,
        /// The version asked for.
        version: String,
    },

    /// The plugin has versions, but none is active.
    #[error("plugin `{name}` has no active version: activate one of its versions")]
    NoActiveVersion {
        /// The plugin's name.
        name: String,
    },

    /// A plugin reference is neither `name` nor `name@sha256:<64 hex>`.
    #[error("`{reference}` does not name a plugin: {reason}")]
    BadReference {
        /// The reference given.
        reference: String,
        /// What to write instead.
        reason: String,
    },

    /// The guard's numbers are out of range.
    #[error("the activation guard is invalid: {reason}")]
    BadGuard {
        /// What is wrong.
        reason: String,
    },

    /// A guarded activation needs a version to roll back to.
    #[error(
        "plugin `{name}` has no active version to roll back to, so its activation cannot be \
         guarded: activate it without a guard"
    )]
    NothingToRollBackTo {
        /// The plugin's name.
        name: String,
    },

    /// Reading or writing the plugin store failed.
    #[error(transparent)]
    Store(#[from] PluginStoreError),
}

impl RegistryError {
    /// Whether the upload itself is at fault (API `422 validation-failed`):
    /// nothing was stored, and sending the same bytes again will fail again.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Invalid(_)
                | Self::TooLarge { .. }
                | Self::SignatureMissing { .. }
                | Self::SignatureUnreadable { .. }
                | Self::SignatureNotTrusted { .. }
                | Self::SignatureOverBytesOnly { .. }
                | Self::CompileTimeout { .. }
        )
    }
}
