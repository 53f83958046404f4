//! Swap under load: calls flow through a loopback ERP while the active
//! version is switched back and forth; no call fails, and each call's
//! version matches what the ERP saw. The swap loop paces the callers (so many
//! calls across and after each switch), so the verdict does not depend on
//! how fast either side runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rescind_host::plugins::registry::RegistryConfig;
use tokio::sync::Semaphore;

use crate::registry_support::{
    Delivery, NAME, echoing_erp, open_registry, received_keys, run, shared_cache, trivial,
    version_of, webhook,
};

/// Switches, calls per version after each switch, concurrent callers, and
/// the bounds that keep the test finite.
const SWAPS: usize = 20;
const CALLS_AFTER_EACH_SWAP: usize = 3;
const CALLERS: usize = 4;
/// Calls let go just before each switch, so that some are in flight while
/// the active version changes.
const CALLS_ACROSS_EACH_SWAP: usize = CALLERS;
/// Calls one switch may take before its version shows up; only a registry
/// that keeps handing out the old version reaches it.
const MAX_CALLS_PER_SWAP: usize = 200;
const DEADLINE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_swaps_under_load_lose_no_call_and_each_call_runs_one_version() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let erp = Arc::new(echoing_erp().await);
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));
    registry
        .upload(NAME, webhook(), "ops", true, None)
        .await
        .unwrap();
    registry
        .upload(NAME, trivial(), "ops", false, None)
        .await
        .unwrap();

    // The callers make one call per permit: the swap loop hands them out, so
    // the number of calls per swap is what the test decides, whatever the
    // speed of the machine.
    let permits = Arc::new(Semaphore::new(0));
    let next_job = Arc::new(AtomicU32::new(1));
    // (job, version the attempt ran, what it did)
    let calls = Arc::new(Mutex::new(Vec::<(u32, String, Delivery)>::new()));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (registry, erp) = (registry.clone(), Arc::clone(&erp));
            let (permits, next_job, calls) = (
                Arc::clone(&permits),
                Arc::clone(&next_job),
                Arc::clone(&calls),
            );
            tokio::spawn(async move {
                // A closed semaphore ends the caller.
                while let Ok(permit) = permits.acquire().await {
                    permit.forget();
                    let n = next_job.fetch_add(1, Ordering::Relaxed);
                    let plugin = registry.active(NAME).expect("always an active version");
                    let delivery = run(&plugin, &erp, n).await;
                    calls
                        .lock()
                        .unwrap()
                        .push((n, plugin.sha256().to_owned(), delivery));
                }
            })
        })
        .collect();

    let started = Instant::now();
    let ran_on = |version: &str| {
        calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, v, _)| v == version)
            .count()
    };
    for swap in 0..SWAPS {
        let target = if swap % 2 == 0 { &v2 } else { &v1 };
        let before = ran_on(target);
        permits.add_permits(CALLS_ACROSS_EACH_SWAP);
        let mut granted = CALLS_ACROSS_EACH_SWAP;
        registry.activate(NAME, target, "ops", None).await.unwrap();
        // Calls that pick the plugin after the switch run the new version;
        // hand out more until enough have.
        while ran_on(target) < before + CALLS_AFTER_EACH_SWAP {
            assert!(
                started.elapsed() < DEADLINE,
                "calls stopped flowing after swap {swap}"
            );
            if permits.available_permits() == 0 {
                assert!(
                    granted < MAX_CALLS_PER_SWAP,
                    "{granted} calls after swap {swap} and still not {CALLS_AFTER_EACH_SWAP} \
                     on the version it activated"
                );
                permits.add_permits(1);
                granted += 1;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    permits.close();
    for caller in callers {
        caller.await.unwrap();
    }

    let calls = calls.lock().unwrap().clone();
    assert!(
        calls.len() >= SWAPS * CALLS_AFTER_EACH_SWAP,
        "{}",
        calls.len()
    );
    let received = received_keys(&erp);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for key in &received {
        *seen.entry(key.as_str()).or_default() += 1;
    }
    for (n, version, delivery) in &calls {
        let key = format!("job-{n}");
        if *version == v1 {
            assert_eq!(*delivery, Delivery::Webhook(key.clone()), "job {n} on v1");
            assert_eq!(
                seen.get(key.as_str()),
                Some(&1),
                "job {n} on v1 reached the ERP once"
            );
        } else {
            assert_eq!(*version, v2, "job {n}");
            assert_eq!(*delivery, Delivery::Trivial, "job {n} on v2");
            assert_eq!(
                seen.get(key.as_str()),
                None,
                "job {n} on v2 must not reach the ERP"
            );
        }
    }
    // Nothing reached the ERP that no call accounts for.
    let on_v1 = calls.iter().filter(|(_, v, _)| *v == v1).count();
    assert_eq!(received.len(), on_v1);
    assert_eq!(registry.audit_log().len(), 1 + SWAPS);
}
