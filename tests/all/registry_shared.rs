//! Two registries over one store, as replicas on one database are:
//! `catch_up` takes over what the other stored and activated, hands the
//! new version to later calls while a call in flight keeps its own, ends a
//! guard the other's activation replaced, and changes nothing when nothing
//! changed. (The PostgreSQL store and the notifications between replicas
//! are tested end to end by the binary `postgres`.)

use rescind_host::plugins::registry::{CaughtUp, Guard, RegistryConfig};

use crate::registry_support::{
    Delivery, NAME, echoing_erp, open_registry, run, shared_cache, trivial, version_of, webhook,
};

#[tokio::test]
async fn a_registry_catches_up_with_versions_and_switches_made_by_another() {
    let data = tempfile::tempdir().unwrap();
    let a = open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let b = open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let erp = echoing_erp().await;
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));

    a.upload(NAME, webhook(), "alice", true, None)
        .await
        .unwrap();
    assert!(b.get(NAME).is_none(), "B has not looked yet");
    let caught = b.catch_up().await.unwrap();
    assert_eq!(
        caught,
        CaughtUp {
            versions: vec![(NAME.to_owned(), v1.clone())],
            switched: vec![(NAME.to_owned(), v1.clone())],
        }
    );
    assert_eq!(b.get(NAME).unwrap().versions, a.get(NAME).unwrap().versions);
    assert_eq!(
        run(&b.resolve(NAME).await.unwrap(), &erp, 1).await,
        Delivery::Webhook("job-1".into())
    );
    // Nothing changed since: nothing to take over.
    assert_eq!(b.catch_up().await.unwrap(), CaughtUp::default());

    // B activates v2 under a guard; a call on B holds v1 meanwhile.
    let held = b.active(NAME).unwrap();
    b.upload(NAME, trivial(), "bob", false, None).await.unwrap();
    let guard = Guard {
        observe_jobs: 10,
        max_failure_rate: 0.2,
    };
    b.activate(NAME, &v2, "bob", Some(guard)).await.unwrap();
    assert!(b.get(NAME).unwrap().guard.is_some());
    assert_eq!(held.sha256(), v1, "a call in flight keeps its version");

    // A takes over v2, then rolls back to v1; B follows and its guard ends,
    // as an activation on B itself would end it.
    let caught = a.catch_up().await.unwrap();
    assert_eq!(caught.versions, [(NAME.to_owned(), v2.clone())]);
    assert_eq!(caught.switched, [(NAME.to_owned(), v2.clone())]);
    assert!(a.get(NAME).unwrap().guard.is_none(), "the guard is B's");
    a.activate(NAME, &v1, "alice", None).await.unwrap();
    let caught = b.catch_up().await.unwrap();
    assert_eq!(caught.switched, [(NAME.to_owned(), v1.clone())]);
    let on_b = b.get(NAME).unwrap();
    assert_eq!(on_b.active.as_deref(), Some(v1.as_str()));
    assert!(on_b.guard.is_none(), "{:?}", on_b.guard);
    assert_eq!(
        run(&b.active(NAME).unwrap(), &erp, 2).await,
        Delivery::Webhook("job-2".into())
    );

    // The history B reads again has A's rollback.
    b.reload_audit().await.unwrap();
    let last = b.audit_log().pop().unwrap();
    assert_eq!((last.to.as_str(), last.by.as_str()), (v1.as_str(), "alice"));
}
