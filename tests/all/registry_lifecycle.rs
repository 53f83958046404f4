//! Upload, activate, call, upgrade, roll back, pin; and a restart that keeps
//! it all without compiling.

use std::sync::Arc;

use rescind_host::plugins::registry::{AuditAction, RegistryConfig, RegistryError};

use crate::registry_support::{
    Delivery, NAME, echoing_erp, open_registry, received_keys, run, shared_cache, trivial,
    version_of, webhook,
};

#[tokio::test]
async fn upload_activate_upgrade_roll_back_and_pin() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let erp = echoing_erp().await;
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));

    // v1, activated on upload: calls go through the webhook to the ERP.
    let info = registry
        .upload(NAME, webhook(), "alice", true, None)
        .await
        .unwrap();
    assert_eq!(info.version, v1);
    assert_eq!(info.sequence, 1);
    assert_eq!(info.uploaded_by, "alice");
    assert_eq!(info.world, "integration-processor");
    assert_eq!(info.wit, "rescind:erp@0.1.0");
    assert_eq!(info.sdk.as_deref(), Some("0.1.0"));
    assert_eq!(info.size, webhook().len() as u64);
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    assert_eq!(
        run(&registry.resolve(NAME).await.unwrap(), &erp, 1).await,
        Delivery::Webhook("job-1".into())
    );

    // v2 stored without activating: calls still use v1.
    let info2 = registry
        .upload(NAME, trivial(), "bob", false, None)
        .await
        .unwrap();
    assert_eq!((info2.version.as_str(), info2.sequence), (v2.as_str(), 2));
    assert_eq!(
        registry.get(NAME).unwrap().active.as_deref(),
        Some(v1.as_str())
    );
    assert_eq!(
        run(&registry.active(NAME).unwrap(), &erp, 2).await,
        Delivery::Webhook("job-2".into())
    );

    // An attempt that started on v1 finishes on v1 across the switch.
    let in_flight = registry.active(NAME).unwrap();
    let released = Arc::downgrade(&in_flight);
    registry.activate(NAME, &v2, "bob", None).await.unwrap();
    assert_eq!(
        run(&registry.active(NAME).unwrap(), &erp, 3).await,
        Delivery::Trivial
    );
    assert_eq!(in_flight.sha256(), v1);
    assert_eq!(
        run(&in_flight, &erp, 4).await,
        Delivery::Webhook("job-4".into())
    );
    // v1's compiled code goes with its last attempt.
    drop(in_flight);
    assert!(released.upgrade().is_none(), "the registry still holds v1");

    // Rolling back to v1: loaded again (from the compile cache).
    registry.activate(NAME, &v1, "alice", None).await.unwrap();
    assert_eq!(
        run(&registry.active(NAME).unwrap(), &erp, 5).await,
        Delivery::Webhook("job-5".into())
    );
    // A pinned reference runs its version whatever is active.
    let pinned = registry.resolve(&format!("{NAME}@{v2}")).await.unwrap();
    assert_eq!(run(&pinned, &erp, 6).await, Delivery::Trivial);
    assert_eq!(received_keys(&erp), ["job-1", "job-2", "job-4", "job-5"]);

    // Every switch is audited and counted.
    let audit: Vec<_> = registry
        .audit_log()
        .into_iter()
        .map(|e| (e.action, e.from, e.to, e.by))
        .collect();
    assert_eq!(
        audit,
        [
            (AuditAction::Activated, None, v1.clone(), "alice".to_owned()),
            (
                AuditAction::Activated,
                Some(v1.clone()),
                v2.clone(),
                "bob".to_owned()
            ),
            (
                AuditAction::RolledBack,
                Some(v2.clone()),
                v1.clone(),
                "alice".to_owned()
            ),
        ]
    );
    let metrics = registry.metrics();
    assert_eq!(
        (metrics.uploads, metrics.activations, metrics.rollbacks),
        (2, 2, 1)
    );

    // The same bytes again are the same version, not a new one; activating
    // the active version changes nothing.
    let again = registry
        .upload(NAME, webhook(), "carol", true, None)
        .await
        .unwrap();
    assert_eq!(again, info);
    registry.activate(NAME, &v1, "carol", None).await.unwrap();
    let summary = registry.get(NAME).unwrap();
    assert_eq!(summary.versions, vec![info, info2]);
    assert_eq!(registry.audit_log().len(), 3);
    assert_eq!(registry.list(), vec![summary]);
}

#[tokio::test]
async fn unknown_names_versions_and_bad_references_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let v1 = registry
        .upload(NAME, trivial(), "alice", false, None)
        .await
        .unwrap()
        .version;

    assert!(matches!(
        registry.active(NAME),
        Err(RegistryError::NoActiveVersion { .. })
    ));
    assert!(matches!(
        registry.active("nobody"),
        Err(RegistryError::UnknownPlugin { .. })
    ));
    let missing = version_of(b"never uploaded");
    let error = registry
        .activate(NAME, &missing, "alice", None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::UnknownVersion { .. }),
        "{error}"
    );
    assert!(error.to_string().contains(&missing), "{error}");
    for reference in [
        format!("{NAME}@{}", &v1[..20]),
        format!("{NAME}@md5:{}", &v1[7..]),
        format!("{NAME}@{}", v1.to_uppercase()),
    ] {
        let error = registry.resolve(&reference).await.unwrap_err();
        assert!(
            matches!(error, RegistryError::BadReference { .. }),
            "{reference}: {error}"
        );
    }
    assert!(matches!(
        registry.resolve(&format!("{NAME}@{missing}")).await,
        Err(RegistryError::UnknownVersion { .. })
    ));
    // Nothing was activated by any of it.
    assert!(registry.audit_log().is_empty());
}

#[tokio::test]
async fn a_restart_keeps_versions_and_the_active_choice_without_compiling() {
    let data = tempfile::tempdir().unwrap();
    let cache = data.path().join("plugins/cache");
    let erp = echoing_erp().await;
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));

    let first = open_registry(data.path(), Some(cache.clone()), RegistryConfig::default()).await;
    first
        .upload(NAME, webhook(), "alice", true, None)
        .await
        .unwrap();
    first
        .upload(NAME, trivial(), "alice", true, None)
        .await
        .unwrap();
    first.activate(NAME, &v1, "alice", None).await.unwrap();
    assert_eq!(first.runtime().compilations(), 2);
    let before = first.get(NAME).unwrap();
    let audit = first.audit_log();
    drop(first);

    let second = open_registry(data.path(), Some(cache), RegistryConfig::default()).await;
    assert_eq!(second.get(NAME).unwrap(), before);
    assert_eq!(second.audit_log(), audit);
    assert_eq!(
        run(&second.active(NAME).unwrap(), &erp, 1).await,
        Delivery::Webhook("job-1".into())
    );
    // Switching to the other stored version needs no compiling either.
    second.activate(NAME, &v2, "alice", None).await.unwrap();
    assert_eq!(
        run(&second.active(NAME).unwrap(), &erp, 2).await,
        Delivery::Trivial
    );
    assert_eq!(second.runtime().compilations(), 0);
    // New versions continue the sequence.
    let next = second
        .upload(
            NAME,
            crate::registry_support::component(rescind_test_artifacts::NOISY),
            "alice",
            false,
            None,
        )
        .await
        .unwrap();
    assert_eq!(next.sequence, 3);
}
