//! What `rescind serve` sets for its own process.

/// The host runs without transparent huge pages, whatever the system's
/// default: with them, the first touch of each 2 MiB region its allocator
/// hands out has the kernel zero all of it on the thread that touched it,
/// a plugin call's or a request's.
#[cfg(target_os = "linux")]
#[test]
fn serve_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let host = crate::jobs_show::start_host(dir.path());
    let status = std::fs::read_to_string(format!("/proc/{}/status", host.child.id()))
        .expect("the host's status");
    host.terminate();
    let line = status
        .lines()
        .find(|line| line.starts_with("THP_enabled:"))
        .expect("Linux 5.0 and later say whether a process may use huge pages");
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
}
