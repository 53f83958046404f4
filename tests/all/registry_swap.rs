//! Swap under load: calls flow continuously through a loopback ERP while
//! the active version is switched back and forth; no call fails, and each
//! call's version matches what the ERP saw.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rescind_host::plugins::registry::RegistryConfig;

use crate::registry_support::{
    Delivery, NAME, echoing_erp, open_registry, received_keys, run, shared_cache, trivial,
    version_of, webhook,
};

/// Switches, calls per version after each switch, concurrent callers, and
/// the bounds that keep the test finite.
const SWAPS: usize = 20;
const CALLS_AFTER_EACH_SWAP: usize = 3;
const CALLERS: usize = 4;
const MAX_CALLS: u32 = 5_000;
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

    let next_job = Arc::new(AtomicU32::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    // (job, version the attempt ran, what it did)
    let calls = Arc::new(Mutex::new(Vec::<(u32, String, Delivery)>::new()));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (registry, erp) = (registry.clone(), Arc::clone(&erp));
            let (next_job, stop, calls) =
                (Arc::clone(&next_job), Arc::clone(&stop), Arc::clone(&calls));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = next_job.fetch_add(1, Ordering::Relaxed);
                    if n > MAX_CALLS {
                        break;
                    }
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
        registry.activate(NAME, target, "ops", None).await.unwrap();
        // Let calls run on the new version before switching again.
        while ran_on(target) < before + CALLS_AFTER_EACH_SWAP {
            assert!(
                started.elapsed() < DEADLINE,
                "calls stopped flowing after swap {swap}"
            );
            assert!(
                next_job.load(Ordering::Relaxed) <= MAX_CALLS,
                "call budget spent at swap {swap}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
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
