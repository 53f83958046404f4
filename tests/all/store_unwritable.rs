//! A database that cannot be written (its disk full) while orders and
//! cancellations arrive: every answer is a success or a clear
//! `503 unavailable`, never a 500; nothing is half-written; and the service
//! recovers by itself once there is room again.
//!
//! The data directory is a size-limited tmpfs that the test mounts, which
//! needs root; where that is not possible the test says why and stops.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::service::{ADMIN, Answer, TestService, sample_order};

/// The tmpfs's size: room for the store, little more.
const SIZE: &str = "32m";
/// Orders stored before the disk fills up.
const PRESTORED: usize = 300;
/// Orders tried once the disk is full before giving up on seeing it.
const MAX_ORDERS: usize = 2_000;

/// A mounted tmpfs, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path) -> Result<Tmpfs, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={SIZE}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        Ok(Tmpfs {
            path: path.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the file system with a ballast file until it refuses more.
fn fill(dir: &Path) -> PathBuf {
    let ballast = dir.join("ballast");
    let mut file = std::fs::File::create(&ballast).expect("create the ballast");
    let chunk = vec![0x5a_u8; 64 * 1024];
    loop {
        if let Err(e) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
            break;
        }
    }
    ballast
}

fn assert_unavailable(answer: &Answer, what: &str) {
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {}",
        answer.body
    );
    assert_eq!(answer.code(), "unavailable", "{what}");
    assert_eq!(
        answer.headers["content-type"], "application/problem+json",
        "{what}"
    );
    assert!(answer.headers.contains_key("retry-after"), "{what}");
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("nothing was changed")),
        "{what}: {}",
        answer.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_changes_nothing_and_the_service_recovers() {
    let outer = tempfile::tempdir().unwrap();
    let tmpfs = match Tmpfs::mount(outer.path()) {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            // Straight to the terminal: a skip must never be silent.
            let _ = writeln!(
                std::io::stderr(),
                "store_unwritable: skipped, cannot mount a {SIZE} tmpfs here ({reason}); \
                 run the tests as root to check a full disk"
            );
            return;
        }
    };
    let data = tmpfs.path.join("data");
    let data_dir = data.clone();
    let service = TestService::start_configured(false, move |config| {
        config.data_dir = data_dir.clone();
    })
    .await;
    service.configure_insite().await;
    let cancel = json!({"cancellationReason": "OUT_OF_STOCK"});

    // Orders stored while there is room; then the disk fills up, and
    // cancellations (and more orders, if need be) keep coming.
    for n in 0..PRESTORED {
        service
            .put_order(&format!("DF-{n}"), &sample_order("C-1"))
            .await;
    }
    let ballast = fill(&tmpfs.path);
    let mut refused = Vec::new();
    let mut committed = Vec::new();
    let mut noticed = false;
    for n in 0..MAX_ORDERS {
        let number = format!("DF-{n}");
        if n >= PRESTORED {
            let put = service
                .call(
                    Method::PUT,
                    &format!("/v1/orders/{number}"),
                    Some(ADMIN),
                    Some(&sample_order("C-1")),
                )
                .await;
            if put.status == StatusCode::SERVICE_UNAVAILABLE {
                assert_unavailable(&put, &format!("PUT {number}"));
                let path = format!("/v1/orders/{number}");
                let missing = service.call(Method::GET, &path, Some(ADMIN), None).await;
                assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
                noticed = true;
                break;
            }
            assert!(put.status.is_success(), "PUT {number}: {}", put.body);
        }
        let a = service.cancel(&number, &cancel).await;
        if a.status == StatusCode::CREATED {
            committed.push(number);
        } else {
            assert_unavailable(&a, &format!("cancel {number}"));
            refused.push(number);
            noticed = true;
            break;
        }
    }
    assert!(noticed, "the full disk was never noticed");
    // Reading still works, and nothing refused was half-written.
    for number in &refused {
        let order = service.order(number).await;
        assert_eq!(order["status"], "Submitted", "{order}");
        assert_eq!(order["cancellations"], json!([]), "{order}");
        for line in order["lines"].as_array().unwrap() {
            assert_eq!(line["state"], "active", "{order}");
        }
        assert_eq!(order["payments"][0]["voidedMinor"], 0, "{order}");
    }
    for number in &committed {
        assert_eq!(service.order(number).await["status"], "Cancelled");
    }
    let health = service.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);

    // Room again: the refused cancellations go through, with no restart.
    std::fs::remove_file(&ballast).unwrap();
    for number in &refused {
        let a = service.cancel(number, &cancel).await;
        assert_eq!(a.status, StatusCode::CREATED, "{number}: {}", a.body);
    }
    service.put_order("DF-after", &sample_order("C-1")).await;

    let a = service.cancel("DF-after", &cancel).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);

    if let Some(running) = { service }.running.take() {
        running
            .shutdown(std::time::Duration::from_secs(10))
            .await
            .expect("clean shutdown");
    }
    drop(tmpfs);
}
