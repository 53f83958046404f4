//! Guarded activation: a broken version is rolled back by the registry
//! itself, and the jobs it failed are delivered by the version restored.

use std::collections::VecDeque;

use rescind_host::plugins::CallOutcome;
use rescind_host::plugins::registry::{
    AuditAction, Guard, OutcomeEffect, PluginRegistry, RegistryConfig,
};
use rescind_tests::erp_server::ErpServer;

use crate::registry_support::{
    Delivery, NAME, component, echoing_erp, open_registry, received_keys, run, shared_cache,
    trivial, version_of, webhook,
};

/// What the job worker will do: run each queued job on the plugin active
/// when its attempt starts, report the outcome, and re-queue what the
/// registry asks to. Returns the rollbacks seen and each job's deliveries.
async fn work_off(
    registry: &PluginRegistry,
    erp: &ErpServer,
    jobs: impl IntoIterator<Item = u32>,
) -> (
    Vec<rescind_host::plugins::registry::AutomaticRollback>,
    Vec<(u32, String, Delivery)>,
) {
    let mut queue: VecDeque<u32> = jobs.into_iter().collect();
    let mut rollbacks = Vec::new();
    let mut attempts = Vec::new();
    // Bounded: each job is re-queued at most once per rollback.
    let mut budget = 3 * queue.len();
    while let Some(n) = queue.pop_front() {
        budget = budget.checked_sub(1).expect("the queue drains");
        let plugin = registry.resolve(NAME).await.unwrap();
        let delivery = run(&plugin, erp, n).await;
        let failed = matches!(delivery, Delivery::Failed(_));
        attempts.push((n, plugin.sha256().to_owned(), delivery));
        match registry
            .record_outcome(NAME, plugin.sha256(), &format!("job-{n}"), failed)
            .await
            .unwrap()
        {
            OutcomeEffect::Counted => {}
            OutcomeEffect::Requeue => queue.push_back(n),
            OutcomeEffect::RolledBack(rollback) => {
                for attempt in &rollback.failed_attempts {
                    let n = attempt.strip_prefix("job-").unwrap().parse().unwrap();
                    queue.push_back(n);
                }
                rollbacks.push(rollback);
            }
        }
    }
    (rollbacks, attempts)
}

#[tokio::test]
async fn a_broken_version_is_rolled_back_and_its_failed_jobs_are_delivered_by_the_old_one() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let erp = echoing_erp().await;
    let good = version_of(&webhook());
    registry
        .upload(NAME, webhook(), "alice", true, None)
        .await
        .unwrap();
    // The good version's recent record: healthy.
    let (rollbacks, _) = work_off(&registry, &erp, 1..=5).await;
    assert!(rollbacks.is_empty());

    let broken = registry
        .upload(
            NAME,
            component(rescind_test_artifacts::PANICKER),
            "bob",
            false,
            None,
        )
        .await
        .unwrap()
        .version;
    let guard = Guard {
        observe_jobs: 10,
        max_failure_rate: 0.2,
    };
    registry
        .activate(NAME, &broken, "bob", Some(guard))
        .await
        .unwrap();
    let status = registry
        .get(NAME)
        .unwrap()
        .guard
        .expect("a guard is running");
    assert_eq!(
        (status.version.as_str(), status.previous.as_str()),
        (broken.as_str(), good.as_str())
    );

    let (rollbacks, attempts) = work_off(&registry, &erp, 6..=15).await;

    // Three failures out of ten allowed two: decided at the third.
    let [rollback] = <[_; 1]>::try_from(rollbacks).unwrap();
    assert_eq!(
        (rollback.from.as_str(), rollback.to.as_str()),
        (broken.as_str(), good.as_str())
    );
    assert_eq!(rollback.failed_attempts, ["job-6", "job-7", "job-8"]);
    assert!(
        rollback.reason.contains("3 of 3 attempts failed"),
        "{}",
        rollback.reason
    );
    let on_broken: Vec<u32> = attempts
        .iter()
        .filter(|(_, version, _)| *version == broken)
        .map(|(n, _, delivery)| {
            assert!(
                matches!(delivery, Delivery::Failed(CallOutcome::Trapped(_))),
                "{delivery:?}"
            );
            *n
        })
        .collect();
    assert_eq!(on_broken, [6, 7, 8]);
    assert_eq!(registry.active(NAME).unwrap().sha256(), good);

    // Every job reached the ERP exactly once, the re-queued ones included.
    let mut keys = received_keys(&erp);
    keys.sort();
    let mut expected: Vec<String> = (1..=15).map(|n| format!("job-{n}")).collect();
    expected.sort();
    assert_eq!(keys, expected);

    let last = registry.audit_log().pop().unwrap();
    assert_eq!(last.action, AuditAction::AutomaticRollback);
    assert_eq!(
        (last.from.as_deref(), last.to.as_str(), last.by.as_str()),
        (Some(broken.as_str()), good.as_str(), "guard")
    );
    assert_eq!(last.reason.as_deref(), Some(rollback.reason.as_str()));
    assert_eq!(registry.metrics().automatic_rollbacks, 1);
    assert!(registry.get(NAME).unwrap().guard.is_none());

    // A late failure of the withdrawn version (in flight during the
    // switch) is re-queued rather than lost.
    assert_eq!(
        registry
            .record_outcome(NAME, &broken, "job-99", true)
            .await
            .unwrap(),
        OutcomeEffect::Requeue
    );
}

#[tokio::test]
async fn a_healthy_version_passes_its_guard_and_stays() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let erp = echoing_erp().await;
    registry
        .upload(NAME, webhook(), "alice", true, None)
        .await
        .unwrap();
    let next = registry
        .upload(NAME, trivial(), "alice", false, None)
        .await
        .unwrap()
        .version;
    let guard = Guard {
        observe_jobs: 3,
        max_failure_rate: 0.0,
    };
    registry
        .activate(NAME, &next, "alice", Some(guard))
        .await
        .unwrap();

    let (rollbacks, attempts) = work_off(&registry, &erp, 1..=4).await;
    assert!(rollbacks.is_empty());
    assert!(
        attempts
            .iter()
            .all(|(_, v, d)| *v == next && *d == Delivery::Trivial),
        "{attempts:?}"
    );
    assert!(registry.get(NAME).unwrap().guard.is_none());
    // The pass is audited by a task of its own: wait for it, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !registry
        .audit_log()
        .iter()
        .any(|e| e.action == AuditAction::GuardPassed && e.to == next)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            registry.audit_log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_guard_needs_a_version_to_return_to_and_sane_numbers() {
    let data = tempfile::tempdir().unwrap();
    let registry =
        open_registry(data.path(), Some(shared_cache()), RegistryConfig::default()).await;
    let first = registry
        .upload(NAME, trivial(), "alice", false, None)
        .await
        .unwrap()
        .version;
    let guard = Guard {
        observe_jobs: 5,
        max_failure_rate: 0.1,
    };
    let error = registry
        .activate(NAME, &first, "alice", Some(guard))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no active version to roll back to"),
        "{error}"
    );
    let error = registry
        .activate(
            NAME,
            &first,
            "alice",
            Some(Guard {
                max_failure_rate: 2.0,
                ..guard
            }),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("maxFailureRate"), "{error}");
    assert!(registry.get(NAME).unwrap().active.is_none());
}
