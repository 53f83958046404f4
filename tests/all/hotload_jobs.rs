//! Hot-loading while jobs flow through the service's workers: a guarded
//! activation of a broken version rolls back by itself and the jobs it
//! failed are delivered by the old version; twenty swaps under load lose
//! and fail no job; a file dropped into the watched folder is loaded.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::hotload_support::{
    PLUGIN, activate, cancel_new_order, configure, echoing_erp, job, last_version, metric, plugin,
    settled_job, upload,
};
use crate::registry_support::{component, trivial, version_of, webhook};
use crate::service::{ADMIN, TestService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_rolls_a_broken_version_back_and_the_old_one_delivers_its_jobs() {
    let erp = echoing_erp().await;
    let service = TestService::start().await;
    let good = version_of(&webhook());
    let broken_bytes = component(rescind_test_artifacts::PANICKER);
    let broken = version_of(&broken_bytes);
    assert_eq!(
        upload(&service, PLUGIN, webhook(), true).await.status,
        StatusCode::CREATED
    );
    // One attempt per round: a job that fails on the broken version is
    // `failed` at once, unless the rollback puts it back in the queue.
    configure(&service, &erp, PLUGIN, 1).await;
    let warm_up = settled_job(&service, &cancel_new_order(&service, "SO-0").await).await;
    assert_eq!(warm_up["state"], "succeeded", "{warm_up}");

    let a = upload(&service, PLUGIN, broken_bytes, false).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let guard = json!({"observeJobs": 4, "maxFailureRate": 0.25});
    let a = activate(&service, PLUGIN, &broken, Some(guard)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["guard"]["version"], broken.as_str());
    assert_eq!(a.body["guard"]["previous"], good.as_str());

    let mut jobs = Vec::new();
    for n in 1..=6 {
        jobs.push(cancel_new_order(&service, &format!("SO-{n}")).await);
    }
    let mut failed_on_broken = 0;
    for id in &jobs {
        // A job that failed on the broken version is `failed` until the
        // rollback puts it back in the queue: wait for it to succeed.
        let settled = succeeded_job(&service, id).await;
        assert_eq!(last_version(&settled), good, "{settled}");
        assert_eq!(settled["erpReference"], settled["requestId"]);
        for attempt in settled["attemptHistory"].as_array().unwrap() {
            if attempt["pluginVersion"] == broken.as_str() {
                assert_eq!(attempt["outcome"], "trapped", "{attempt}");
                // The panic, then the guest's stack by function name.
                let message = attempt["message"].as_str().unwrap_or_default();
                assert!(message.contains("plugin panicked on purpose"), "{attempt}");
                assert!(message.contains("\nguest backtrace:\n"), "{attempt}");
                assert!(message.contains("::submit_cancellation @ 0x"), "{attempt}");
                failed_on_broken += 1;
            }
        }
    }
    // The guard allowed one failure in four; the second rolled back.
    assert!(
        failed_on_broken >= 2,
        "{failed_on_broken} attempts failed on the broken version"
    );

    let view = plugin(&service, PLUGIN).await.body;
    assert_eq!(view["active"], good.as_str());
    assert!(view["guard"].is_null(), "{view}");
    let last = view["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "automatic-rollback", "{view}");
    assert_eq!(last["by"], "guard");
    assert_eq!(last["from"], broken.as_str());
    assert_eq!(last["to"], good.as_str());
    assert!(last["reason"].as_str().unwrap().contains("25%"), "{last}");
    assert_eq!(
        metric(
            &service,
            "rescind_plugin_switches_total{action=\"automatic-rollback\"}"
        )
        .await,
        Some(1.0)
    );
    // Every job reached the ERP exactly once (the broken version never
    // called it).
    let keys: Vec<String> = erp
        .requests()
        .iter()
        .filter_map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 7, "{keys:?}");
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 7);
}

/// Polls until the job succeeded (bounded: 60 s; a job still not
/// succeeded then fails the test, showing it).
async fn succeeded_job(service: &TestService, id: &str) -> Value {
    let mut view = job(service, id).await;
    for _ in 0..1200 {
        if view["state"] == "succeeded" {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        view = job(service, id).await;
    }
    panic!("job {id} did not succeed within 60 s: {view}");
}

/// Bounds of the swap test: switches, cancellations let go just before each
/// switch (their jobs are in flight while the version changes) and just
/// after it (their jobs must run on the new version), and producers.
const SWAPS: usize = 20;
const ACROSS_EACH_SWAP: usize = 2;
const AFTER_EACH_SWAP: usize = 2;
const PRODUCERS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_swaps_while_jobs_flow_fail_and_lose_no_job() {
    let erp = Arc::new(echoing_erp().await);
    let service = Arc::new(TestService::start().await);
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));
    assert_eq!(
        upload(&service, PLUGIN, webhook(), true).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        upload(&service, PLUGIN, trivial(), false).await.status,
        StatusCode::CREATED
    );
    configure(&service, &erp, PLUGIN, 3).await;

    // Cancellations come from clients of the API, one per permit: the swap
    // loop hands the permits out, so how many jobs run around each switch
    // is the test's choice, not the machine's speed. Each job is noted with
    // the switch that was complete when its cancellation was sent.
    let permits = Arc::new(Semaphore::new(0));
    let switched = Arc::new(AtomicUsize::new(0));
    let next_order = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(std::sync::Mutex::new(Vec::<(usize, String)>::new()));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (service, permits, switched, next_order, created) = (
                Arc::clone(&service),
                Arc::clone(&permits),
                Arc::clone(&switched),
                Arc::clone(&next_order),
                Arc::clone(&created),
            );
            tokio::spawn(async move {
                while let Ok(permit) = permits.acquire().await {
                    permit.forget();
                    let after = switched.load(Ordering::SeqCst);
                    let n = next_order.fetch_add(1, Ordering::SeqCst);
                    let id = cancel_new_order(&service, &format!("SW-{n}")).await;
                    created.lock().unwrap().push((after, id));
                }
            })
        })
        .collect();

    let mut expected = 0;
    for swap in 1..=SWAPS {
        let to = if swap % 2 == 1 { &v2 } else { &v1 };
        permits.add_permits(ACROSS_EACH_SWAP);
        let a = activate(&service, PLUGIN, to, None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        switched.store(swap, Ordering::SeqCst);
        permits.add_permits(AFTER_EACH_SWAP);
        expected += ACROSS_EACH_SWAP + AFTER_EACH_SWAP;
        // Every job so far settles before the next switch; those sent after
        // this one ran the version it activated.
        wait_until("the cancellations of this switch are sent", || async {
            created.lock().unwrap().len() == expected
        })
        .await;
        let jobs: Vec<(usize, String)> = created.lock().unwrap().clone();
        for (after, id) in jobs.iter().filter(|(after, _)| *after == swap) {
            let settled = settled_job(&service, id).await;
            assert_eq!(
                last_version(&settled),
                *to,
                "job sent after switch {after} ran another version: {settled}"
            );
        }
    }
    permits.close();
    for producer in producers {
        producer.await.expect("the producer ends");
    }

    let created: Vec<String> = created
        .lock()
        .unwrap()
        .iter()
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(created.len(), SWAPS * (ACROSS_EACH_SWAP + AFTER_EACH_SWAP));
    let mut settled_jobs = Vec::new();
    for id in &created {
        settled_jobs.push(settled_job(&service, id).await);
    }
    let (mut on_v1, mut on_v2) = (0, 0);
    let received: HashSet<String> = erp
        .requests()
        .iter()
        .filter_map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect();
    for settled in &settled_jobs {
        assert_eq!(settled["state"], "succeeded", "{settled}");
        let attempts = settled["attemptHistory"].as_array().unwrap();
        assert!(
            attempts.iter().all(|a| a["outcome"] == "accepted"),
            "no attempt may fail because of a swap: {settled}"
        );
        let request_id = settled["requestId"].as_str().unwrap();
        let version = last_version(settled);
        // What the ERP saw matches the version the attempt recorded.
        if version == v1 {
            on_v1 += 1;
            assert_eq!(settled["erpReference"], request_id);
            assert!(received.contains(request_id), "{settled}");
        } else {
            assert_eq!(version, v2, "{settled}");
            on_v2 += 1;
            assert_eq!(settled["erpReference"], "trivial");
            assert!(!received.contains(request_id), "{settled}");
        }
    }
    // No job lost: every cancellation's job is there and settled, and the
    // jobs the service lists are exactly those.
    let listed = service
        .call(Method::GET, "/v1/admin/jobs?limit=1000", Some(ADMIN), None)
        .await;
    let listed: HashSet<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, created.iter().map(String::as_str).collect());
    assert!(on_v1 > 0 && on_v2 > 0, "v1 {on_v1}, v2 {on_v2}");
    let history = plugin(&service, PLUGIN).await.body["history"]
        .as_array()
        .unwrap()
        .len();
    // The first activation, then the twenty swaps.
    assert_eq!(history, 1 + SWAPS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_dropped_into_the_watched_folder_is_loaded_and_a_half_written_one_is_not() {
    let folder = tempfile::tempdir().unwrap();
    let watched = folder.path().to_owned();
    let service = TestService::start_configured(true, move |config| {
        config.plugins.watch_dir = Some(watched.clone());
        config.plugins.watch_config.debounce = Duration::from_millis(100);
    })
    .await;
    let erp = echoing_erp().await;

    // Half of a component, as a copy in progress leaves it.
    let bytes = webhook();
    let file = folder.path().join(format!("{PLUGIN}.wasm"));
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let refused = "rescind_plugin_folder_events_total{outcome=\"refused\"}";
    wait_until("the half-written file is looked at", || async {
        metric(&service, refused).await >= Some(1.0)
    })
    .await;
    assert_eq!(plugin(&service, PLUGIN).await.status, StatusCode::NOT_FOUND);

    // The copy completes: loaded and activated.
    std::fs::write(&file, &bytes).unwrap();
    wait_until("the complete file is loaded", || async {
        plugin(&service, PLUGIN).await.body["active"] == version_of(&bytes).as_str()
    })
    .await;
    let view = plugin(&service, PLUGIN).await.body;
    assert_eq!(view["versions"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(view["versions"][0]["uploadedBy"], "folder-watch");
    // The audit log has the upload, as the folder's; the refused half had
    // none.
    let folder_entries = || async {
        service
            .call(
                reqwest::Method::GET,
                "/v1/admin/audit?limit=1000",
                Some(crate::service::ADMIN),
                None,
            )
            .await
            .body
            .as_array()
            .expect("audit entries")
            .iter()
            .filter(|e| e["actor"] == "plugins-folder")
            .cloned()
            .collect::<Vec<_>>()
    };
    wait_until("the folder's upload is audited", || async {
        !folder_entries().await.is_empty()
    })
    .await;
    let entries = folder_entries().await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["method"], "PUT");
    assert_eq!(entries[0]["path"], format!("/v1/admin/plugins/{PLUGIN}"));
    let summary = entries[0]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!("{PLUGIN}.wasm loaded from the watched folder"))
            && summary.contains(&version_of(&bytes)),
        "{summary}"
    );
    // A job definition may name it now that it exists.
    configure(&service, &erp, PLUGIN, 3).await;
    let done = settled_job(&service, &cancel_new_order(&service, "SO-W").await).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(last_version(&done), version_of(&bytes));
}

/// Polls `check` every 50 ms, for at most 30 s.
async fn wait_until<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}
