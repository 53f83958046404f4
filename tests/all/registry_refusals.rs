//! Uploads the registry must refuse, each with a clear reason and nothing
//! stored.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use rescind_host::plugins::PluginError;
use rescind_host::plugins::registry::{PluginSigningKey, RegistryConfig, RegistryError};

use crate::registry_support::{
    NAME, component, files_under, open_registry, shared_cache, trivial, version_of, webhook,
};

/// What is uploaded, which error it must get, and a phrase of its message.
type Refusal = (
    &'static str,
    Vec<u8>,
    fn(&RegistryError) -> bool,
    &'static str,
);

/// What is uploaded, with which signature, and a phrase of the refusal.
type SignedUpload = (&'static str, Vec<u8>, Option<Vec<u8>>, &'static str);

/// Asserts the upload was refused as a validation failure and left no trace.
fn assert_nothing_stored(
    registry: &rescind_host::plugins::registry::PluginRegistry,
    data: &std::path::Path,
) {
    assert!(registry.get(NAME).is_none(), "{:?}", registry.get(NAME));
    let stored = files_under(&data.join("plugins/store"));
    assert!(stored.is_empty(), "{stored:?}");
    assert!(registry.audit_log().is_empty());
}

#[tokio::test]
async fn invalid_components_are_refused_and_nothing_is_stored() {
    let data = tempfile::tempdir().unwrap();
    let registry = open_registry(
        data.path(),
        Some(shared_cache()),
        RegistryConfig {
            max_component_bytes: 4 * 1024 * 1024,
            ..RegistryConfig::default()
        },
    )
    .await;
    let oversized = {
        let mut bytes = trivial();
        bytes.resize(4 * 1024 * 1024 + 1, 0);
        bytes
    };
    let cases: Vec<Refusal> = vec![
        (
            "garbage",
            b"#!/bin/sh\necho hello\n".to_vec(),
            |e| matches!(e, RegistryError::Invalid(PluginError::NotWasm { .. })),
            "not a WebAssembly binary",
        ),
        (
            "core module",
            b"\0asm\x01\0\0\0".to_vec(),
            |e| matches!(e, RegistryError::Invalid(PluginError::CoreModule { .. })),
            "core WebAssembly module",
        ),
        (
            "wrong world",
            component(rescind_test_artifacts::WRONG_WORLD),
            |e| matches!(e, RegistryError::Invalid(PluginError::WrongWorld { .. })),
            "not an integration processor",
        ),
        (
            "old SDK",
            component(rescind_test_artifacts::OLD_SDK),
            |e| {
                matches!(
                    e,
                    RegistryError::Invalid(PluginError::IncompatibleSdk { .. })
                )
            },
            "rescind:erp@0.1.0",
        ),
        (
            "truncated component",
            trivial()[..trivial().len() / 2].to_vec(),
            |e| matches!(e, RegistryError::Invalid(PluginError::Malformed { .. })),
            "not a valid WebAssembly component",
        ),
        (
            "oversized",
            oversized,
            |e| matches!(e, RegistryError::TooLarge { limit: 4194304, .. }),
            "more than the 4194304 bytes",
        ),
    ];
    let count = cases.len() as u64;
    for (what, bytes, expected, message) in cases {
        let error = registry
            .upload(NAME, bytes, "mallory", true, None)
            .await
            .expect_err(what);
        assert!(expected(&error), "{what}: {error:?}");
        assert!(error.is_refusal(), "{what}");
        assert!(error.to_string().contains(message), "{what}: {error}");
        assert_nothing_stored(&registry, data.path());
    }
    let error = registry
        .upload("../escape", trivial(), "mallory", true, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::Invalid(PluginError::InvalidName { .. })
        ),
        "{error}"
    );
    assert_nothing_stored(&registry, data.path());
    assert_eq!(registry.metrics().refused_uploads, count + 1);
    assert_eq!(registry.metrics().uploads, 0);
}

#[tokio::test]
async fn with_trusted_keys_only_correctly_signed_uploads_are_accepted() {
    let data = tempfile::tempdir().unwrap();
    let seed = |byte: u8| hex::encode([byte; 32]);
    let operator = PluginSigningKey::parse(&seed(7)).unwrap();
    let stranger = PluginSigningKey::parse(&seed(8)).unwrap();
    let key = operator.public_key();
    let registry = open_registry(
        data.path(),
        Some(shared_cache()),
        RegistryConfig {
            trusted_keys: vec![key.clone()],
            ..RegistryConfig::default()
        },
    )
    .await;
    let bytes = trivial();
    let good = STANDARD.decode(operator.sign(NAME, &bytes)).unwrap();
    let mut altered = bytes.clone();
    let last = altered.len() - 1;
    altered[last] ^= 0x01;
    // The scheme before signatures named the plugin: the bytes alone.
    let bytes_only = SigningKey::from_bytes(&[7; 32]).sign(&bytes).to_bytes();

    let refusals: Vec<SignedUpload> = vec![
        ("missing", bytes.clone(), None, "is not signed"),
        (
            "wrong key",
            bytes.clone(),
            Some(stranger.sign(NAME, &bytes).into_bytes()),
            "does not verify with any trusted key",
        ),
        (
            "signed for another plugin name",
            bytes.clone(),
            Some(operator.sign("webhook", &bytes).into_bytes()),
            "for another plugin name",
        ),
        (
            "altered byte",
            altered,
            Some(good.clone()),
            "does not verify with any trusted key",
        ),
        (
            "over the bytes alone",
            bytes.clone(),
            Some(bytes_only.to_vec()),
            "covers the file's bytes alone",
        ),
        (
            "unreadable",
            bytes.clone(),
            Some(b"c2lnbmF0dXJl".to_vec()),
            "cannot be read",
        ),
    ];
    for (what, bytes, signature, message) in refusals {
        let error = registry
            .upload(NAME, bytes, "mallory", true, signature.as_deref())
            .await
            .expect_err(what);
        assert!(error.is_refusal(), "{what}");
        assert!(error.to_string().contains(message), "{what}: {error}");
        assert_nothing_stored(&registry, data.path());
    }

    // The base64 text, as a header or a .sig file carries it.
    let info = registry
        .upload(
            NAME,
            bytes.clone(),
            "alice",
            true,
            Some(STANDARD.encode(good).as_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(info.version, version_of(&bytes));
    assert_eq!(info.signed_by, Some(key.id()));
    assert_eq!(registry.active(NAME).unwrap().sha256(), info.version);
}

#[tokio::test]
async fn a_compilation_past_the_time_limit_is_refused_without_hanging_the_host() {
    let data = tempfile::tempdir().unwrap();
    // No compile cache: the webhook takes a debug host about two seconds.
    let registry = open_registry(
        data.path(),
        None,
        RegistryConfig {
            compile_timeout: Duration::from_millis(1),
            ..RegistryConfig::default()
        },
    )
    .await;
    let error = registry
        .upload(NAME, webhook(), "mallory", true, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::CompileTimeout { .. }),
        "{error:?}"
    );
    assert!(error.is_refusal());
    assert!(
        error.to_string().contains("did not compile within"),
        "{error}"
    );
    assert_nothing_stored(&registry, data.path());

    // The runaway compilation keeps the only compile slot until it ends:
    // the next upload is told so instead of starting a second one. Whether
    // the runaway is still running when the next upload asks depends on the
    // machine (a release host compiles the webhook in a fraction of a
    // second), so uploads are repeated until one finds a runaway running
    // (each that does not becomes the next runaway); a registry that starts
    // a second compilation never answers busy.
    for round in 1..=10 {
        let error = registry
            .upload("other", webhook(), "mallory", true, None)
            .await
            .unwrap_err();
        match error {
            RegistryError::CompilerBusy => {
                assert!(!error.is_refusal());
                assert_nothing_stored(&registry, data.path());
                return;
            }
            RegistryError::CompileTimeout { .. } => {
                eprintln!("upload {round}: the runaway compilation had ended")
            }
            other => panic!("{other:?}"),
        }
    }
    panic!("none of 10 uploads found the runaway compilation still running");
}
