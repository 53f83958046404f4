//! Why a plugin could not be loaded, or the runtime could not start.
//!
//! Every message says what is wrong and how to fix it: these texts reach the
//! operator who uploaded the plugin (API `validation-failed`) unchanged.

use crate::plugins::compat::SUPPORTED_WIT;

/// A plugin was refused, or the plugin runtime could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The plugin name is empty, too long or has characters other than
    /// lowercase ASCII letters, digits, `-` and `_`
    /// ([`crate::plugins::validate_plugin_name`]).
    #[error("`{name}` is not a valid plugin name: {hint}")]
    InvalidName {
        /// The refused name.
        name: String,
        /// What to write instead.
        hint: String,
    },

    /// The bytes are not WebAssembly at all.
    #[error(
        "plugin `{plugin}` is not a WebAssembly binary (it does not start with the `\\0asm` \
         header): upload the `.wasm` file that `cargo build --target wasm32-wasip2` writes"
    )]
    NotWasm {
        /// The plugin's name.
        plugin: String,
    },

    /// The bytes are a core WebAssembly module, which cannot import
    /// `wasi:http` or export a WIT interface.
    #[error(
        "plugin `{plugin}` is a core WebAssembly module, not a component: build with \
         `cargo build --target wasm32-wasip2`"
    )]
    CoreModule {
        /// The plugin's name.
        plugin: String,
    },

    /// The binary is damaged or uses an encoding this host cannot read.
    #[error("plugin `{plugin}` is not a valid WebAssembly component: {reason}")]
    Malformed {
        /// The plugin's name.
        plugin: String,
        /// What the parser or the compiler found.
        reason: String,
    },

    /// The component does not export the integration processor interface.
    #[error(
        "plugin `{plugin}` is not an integration processor: it exports {}, but the \
         `integration-processor` world exports `{expected}`: build it with the rescind-guest \
         SDK (implement `IntegrationProcessor`, then `register_integration_processor!`)",
        describe_exports(.exports)
    )]
    WrongWorld {
        /// The plugin's name.
        plugin: String,
        /// What the component exports at its top level.
        exports: Vec<String>,
        /// The export this host calls.
        expected: String,
    },

    /// The component was stamped by a guest SDK for a WIT version this host
    /// does not serve.
    #[error(
        "plugin `{plugin}` was built with rescind-guest {sdk} for `{wit}`, but this host serves \
         `{}`: rebuild it with a rescind-guest release for `{}`",
        SUPPORTED_WIT,
        SUPPORTED_WIT
    )]
    IncompatibleSdk {
        /// The plugin's name.
        plugin: String,
        /// The SDK version named in the stamp.
        sdk: String,
        /// The WIT package named in the stamp.
        wit: String,
    },

    /// The `rescind:sdk` custom section is present but unreadable.
    #[error(
        "plugin `{plugin}` has a damaged `rescind:sdk` stamp ({reason}): rebuild it with the \
         rescind-guest SDK"
    )]
    BadSdkStamp {
        /// The plugin's name.
        plugin: String,
        /// What is wrong with the stamp.
        reason: String,
    },

    /// The processor export exists but its types differ from the contract.
    #[error(
        "plugin `{plugin}` exports `{export}` with types that differ from this host's \
         `{}` contract ({reason}): rebuild it against the published WIT",
        SUPPORTED_WIT
    )]
    ExportMismatch {
        /// The plugin's name.
        plugin: String,
        /// The export in question.
        export: String,
        /// What wasmtime's type check reported.
        reason: String,
    },

    /// The component imports something the sandbox does not provide.
    #[error(
        "plugin `{plugin}` imports `{import}`, which this host does not provide to plugins \
         (they get wasi:http, the `rescind:erp/host` interface and a WASI sandbox without \
         files, sockets or environment): remove the dependency that pulls it in ({reason})"
    )]
    UnsatisfiedImport {
        /// The plugin's name.
        plugin: String,
        /// The import that cannot be satisfied.
        import: String,
        /// wasmtime's full explanation.
        reason: String,
    },

    /// The runtime configuration cannot be served on this machine.
    #[error("the plugin runtime cannot start: {reason}")]
    Runtime {
        /// What wasmtime reported.
        reason: String,
    },
}

fn describe_exports(exports: &[String]) -> String {
    if exports.is_empty() {
        "nothing".to_owned()
    } else {
        exports
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
