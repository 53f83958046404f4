//! Plugins shared by replicas on one PostgreSQL database: a version
//! uploaded and activated on one replica is listed and run by another, a
//! rollback travels back, a replica started on an empty data directory
//! restores the active versions from the database, and a starting replica
//! leaves an operator's choice over a bundled plugin alone; a SQLite host's
//! plugins move to the database with the rest of its store.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rescind_host::cli::Exit;
use rescind_host::store::SECRETS_KEY_FILE;
use serde_json::Value;

use crate::hotload_support::{
    PLUGIN, activate, cancel_new_order, configure, echoing_erp, last_version, plugin, settled_job,
    upload,
};
use crate::registry_support::{trivial, version_of, webhook};
use crate::service::{TestDatabase, TestService};

/// How long a test waits for a change to reach another replica before it
/// fails. Far above the second the design promises (a notification, or
/// the registry's periodic check every `FOLLOW_EVERY`): the verdict must
/// not depend on how loaded the machine is; the time taken is printed.
const CEILING: Duration = Duration::from_secs(15);

/// Polls `service`'s view of plugin `name` until `done` holds (bounded by
/// [`CEILING`]); answers the view.
async fn plugin_view_until(
    service: &TestService,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let view = plugin(service, name).await;
        if view.status == StatusCode::OK && done(&view.body) {
            println!("{what}: seen after {:?}", started.elapsed());
            return view.body;
        }
        assert!(
            started.elapsed() < CEILING,
            "{what}: not seen within {CEILING:?}; last view: {} {}",
            view.status,
            view.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn versions(view: &Value) -> Vec<&str> {
    view["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["version"].as_str().expect("version"))
        .collect()
}

fn actions(view: &Value) -> Vec<&str> {
    view["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["action"].as_str().expect("action"))
        .collect()
}

/// Replica A (no workers) takes the upload and activation; replica B lists
/// the version as active, its workers run it for a job B's API queued; a
/// newer version activated on A reaches B too; a rollback on B reaches A,
/// with the rollback in A's history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activation_on_one_replica_is_in_force_on_the_others_and_a_rollback_travels_back() {
    let erp = echoing_erp().await;
    let a = TestService::start_without_workers().await;
    let b = a.replica(true).await;
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));

    let uploaded = upload(&a, PLUGIN, webhook(), true).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    let seen = plugin_view_until(&b, PLUGIN, "v1 active on B", |view| {
        view["active"] == v1.as_str()
    })
    .await;
    assert_eq!(versions(&seen), [v1.as_str()]);
    // B lists what A answered, to the nanosecond of its upload time.
    for field in [
        "version",
        "sequence",
        "uploadedBy",
        "uploadedAt",
        "size",
        "wit",
        "sdk",
    ] {
        assert_eq!(seen["versions"][0][field], uploaded.body[field], "{field}");
    }

    // B accepts a job definition naming the plugin, and B's workers (the
    // only ones) deliver the job with the version A activated.
    configure(&b, &erp, PLUGIN, 3).await;
    let job = settled_job(&b, &cancel_new_order(&b, "SO-P1").await).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(last_version(&job), v1);
    assert_eq!(job["erpReference"], job["requestId"]);

    // A newer version, uploaded without activation: listed on B, not active.
    let second = upload(&a, PLUGIN, trivial(), false).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    plugin_view_until(&b, PLUGIN, "v2 listed on B", |view| {
        versions(view) == [v1.as_str(), v2.as_str()]
    })
    .await;
    assert_eq!(plugin(&b, PLUGIN).await.body["active"], v1.as_str());

    // Activated on A: B's next job runs it.
    let activated = activate(&a, PLUGIN, &v2, None).await;
    assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
    plugin_view_until(&b, PLUGIN, "v2 active on B", |view| {
        view["active"] == v2.as_str()
    })
    .await;
    let job = settled_job(&b, &cancel_new_order(&b, "SO-P2").await).await;
    assert_eq!(last_version(&job), v2, "{job}");

    // Rolled back on B: A follows, and A's history has B's rollback.
    let rolled_back = activate(&b, PLUGIN, &v1, None).await;
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.body);
    let on_a = plugin_view_until(&a, PLUGIN, "the rollback on A", |view| {
        view["active"] == v1.as_str() && actions(view).last() == Some(&"rolled-back")
    })
    .await;
    assert_eq!(actions(&on_a), ["activated", "activated", "rolled-back"]);
    let job = settled_job(&b, &cancel_new_order(&b, "SO-P3").await).await;
    assert_eq!(last_version(&job), v1, "{job}");
}

/// A replica started on an empty data directory (only the secrets key
/// file, which replicas share) restores every version and the active
/// choice from the database, and runs the active one; nothing of the
/// registry is written to its data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_an_empty_data_directory_restores_the_active_versions_from_the_database() {
    let erp = echoing_erp().await;
    let first = TestService::start_without_workers().await;
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));
    assert_eq!(
        upload(&first, PLUGIN, webhook(), true).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        upload(&first, PLUGIN, trivial(), true).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        activate(&first, PLUGIN, &v1, None).await.status,
        StatusCode::OK
    );
    configure(&first, &erp, PLUGIN, 3).await;
    let database = first.database.clone();
    let old_dir = first.stop().await;

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        old_dir.path().join(SECRETS_KEY_FILE),
        dir.path().join(SECRETS_KEY_FILE),
    )
    .expect("copy the secrets key file");
    drop(old_dir);
    let fresh = TestService::start_on(dir, database, true, |_| {}).await;

    let view = plugin(&fresh, PLUGIN).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    assert_eq!(view.body["active"], v1.as_str());
    assert_eq!(versions(&view.body), [v1.as_str(), v2.as_str()]);
    assert_eq!(
        actions(&view.body),
        ["activated", "activated", "rolled-back"]
    );
    let job = settled_job(&fresh, &cancel_new_order(&fresh, "SO-R1").await).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(last_version(&job), v1);
    assert!(
        !fresh.dir.path().join("plugins/store").exists(),
        "the registry wrote to the data directory"
    );
}

/// An operator's version of a plugin the binary bundles, activated on one
/// replica, stays active when another replica starts (and installs the
/// bundled plugins): the starting replica does not put the bundled
/// version back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_replica_keeps_the_operators_choice_over_a_bundled_plugin() {
    let a = TestService::start_without_workers().await;
    let bundled = plugin(&a, "webhook").await;
    assert_eq!(bundled.status, StatusCode::OK, "{}", bundled.body);
    let bundled_version = bundled.body["active"].as_str().expect("active").to_owned();
    let own = version_of(&trivial());
    assert_ne!(bundled_version, own);
    let uploaded = upload(&a, "webhook", trivial(), true).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);

    let b = a.replica(false).await;
    let on_b = plugin(&b, "webhook").await;
    assert_eq!(on_b.body["active"], own.as_str(), "{}", on_b.body);
    assert_eq!(
        versions(&on_b.body),
        [bundled_version.as_str(), own.as_str()]
    );
    assert_eq!(actions(&on_b.body), ["activated", "activated"]);
    assert_eq!(plugin(&a, "webhook").await.body["active"], own.as_str());
}

/// An active version changed in the database without a notification (the
/// listener of each replica missed it, or an operator edited the table):
/// every replica finds it at its periodic check and switches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_nobody_announced_is_found_by_the_periodic_check() {
    let a = TestService::start_without_workers().await;
    let b = a.replica(false).await;
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));
    assert_eq!(
        upload(&a, PLUGIN, webhook(), true).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        upload(&a, PLUGIN, trivial(), true).await.status,
        StatusCode::CREATED
    );
    plugin_view_until(&b, PLUGIN, "v2 active on B", |view| {
        view["active"] == v2.as_str()
    })
    .await;

    let changed = a
        .edit_database(
            "not run: this binary's services are on PostgreSQL",
            "UPDATE plugin_active SET version = $1 WHERE name = 'erp-plugin'",
            &v1,
        )
        .await;
    assert_eq!(changed, 1);
    for (replica, what) in [(&a, "the unannounced switch on A"), (&b, "… on B")] {
        plugin_view_until(replica, PLUGIN, what, |view| view["active"] == v1.as_str()).await;
    }
}

/// A SQLite host's plugins (kept in its data directory) move with
/// `rescind migrate-store`: the first replica started on the old data
/// directory copies them into the database, and a replica with a data
/// directory of its own lists and runs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_moved_to_postgresql_brings_its_plugins_to_every_replica() {
    let erp = echoing_erp().await;
    let before =
        TestService::start_on(tempfile::tempdir().expect("dir"), None, false, |_| {}).await;
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));
    assert_eq!(
        upload(&before, PLUGIN, webhook(), true).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        upload(&before, PLUGIN, trivial(), false).await.status,
        StatusCode::CREATED
    );
    configure(&before, &erp, PLUGIN, 3).await;
    let listed_before = plugin(&before, PLUGIN).await.body;
    let dir = before.stop().await;

    let database = std::sync::Arc::new(TestDatabase::create().await);
    assert_eq!(
        crate::migrate::migrate_store(dir.path(), &database.url).await,
        Exit::SUCCESS
    );
    let first = TestService::start_on(dir, Some(database), false, |_| {}).await;
    let second = first.replica(true).await;
    for replica in [&first, &second] {
        let view = plugin(replica, PLUGIN).await.body;
        assert_eq!(view["active"], v1.as_str(), "{view}");
        assert_eq!(versions(&view), [v1.as_str(), v2.as_str()]);
        assert_eq!(view["versions"], listed_before["versions"]);
        assert_eq!(actions(&view), ["activated"]);
    }
    let job = settled_job(&second, &cancel_new_order(&second, "SO-M1").await).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(last_version(&job), v1);
}
