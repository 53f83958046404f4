//! Shadow runs: an inactive version of a plugin run beside the active one
//! on the plugin's next real jobs, what it would have sent compared with
//! what the active version sent. In the jobs database on both stores, so
//! that every replica's workers take part and any replica can report.
//!
//! A plugin has at most one run; starting another replaces it and its
//! results. A job is taken at most once per run, and never once the run has
//! as many as it asked for: taking happens in one write transaction.

use serde::{Deserialize, Serialize};

use super::db::{StoreRow, on};
use super::{AttemptLogLine, Store, StoreError, from_json, now_ms, to_json};

/// A shadow run to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShadowRun {
    /// The plugin.
    pub plugin: String,
    /// The inactive version to run beside the active one (`sha256:…`).
    pub version: String,
    /// How many jobs it runs on.
    pub jobs: u32,
    /// Who started it, as the audit log names the caller.
    pub started_by: String,
}

/// A shadow run with the jobs it took so far.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowRun {
    /// The plugin.
    pub plugin: String,
    /// The version run in the shadow.
    pub version: String,
    /// How many jobs it runs on.
    pub jobs: u32,
    /// When it started (ms since the epoch).
    pub started_at_ms: i64,
    /// Who started it.
    pub started_by: String,
    /// When it was stopped before it ran on all its jobs, if it was.
    pub stopped_at_ms: Option<i64>,
    /// The jobs taken, in the order they were taken.
    pub results: Vec<ShadowResult>,
}

impl ShadowRun {
    /// `running`, `complete` (every job compared) or `stopped`.
    pub fn state(&self) -> &'static str {
        let compared = self.results.iter().filter(|r| r.report.is_some()).count();
        if compared >= self.jobs as usize {
            "complete"
        } else if self.stopped_at_ms.is_some() {
            "stopped"
        } else {
            "running"
        }
    }
}

/// One job of a shadow run.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowResult {
    /// The job.
    pub job_id: String,
    /// Its attempt that the shadow version ran beside.
    pub attempt: u32,
    /// The active version that ran that attempt.
    pub active_version: String,
    /// When the job was taken (ms since the epoch).
    pub taken_at_ms: i64,
    /// The comparison, once the shadow version ran.
    pub report: Option<ShadowComparison>,
}

/// What the shadow version did against what the active version did on one
/// job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShadowComparison {
    /// Whether the shadow version sent the same requests as the active one
    /// (redacted and cut values are not compared).
    pub identical: bool,
    /// The active version's outcome (`accepted`, `rejected`, …).
    pub active_outcome: String,
    /// The shadow version's outcome.
    pub shadow_outcome: String,
    /// The shadow version's message, if its outcome has one.
    pub shadow_message: Option<String>,
    /// Request by request.
    pub requests: Vec<ShadowRequest>,
    /// What could not be answered as the ERP answered, or was not compared.
    pub notes: Vec<String>,
    /// The shadow version's log lines.
    pub shadow_log: Vec<AttemptLogLine>,
    /// How long the shadow call took, in milliseconds.
    pub shadow_ms: u64,
}

/// One request of a shadow comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShadowRequest {
    /// `METHOD /path` of the active version's request, if it sent one.
    pub active: Option<String>,
    /// `METHOD /path` of the shadow version's request, if it made one.
    pub shadow: Option<String>,
    /// What differs, one entry per field.
    pub differences: Vec<String>,
    /// What was not compared, and why.
    pub skipped: Vec<String>,
}

fn result_of(row: &impl StoreRow) -> Result<ShadowResult, StoreError> {
    Ok(ShadowResult {
        job_id: row.text("job_id")?,
        attempt: row.count("attempt")?,
        active_version: row.text("active_version")?,
        taken_at_ms: row.int("taken_at")?,
        report: row
            .opt_text("report")?
            .map(|text| from_json("shadow report", &text))
            .transpose()?,
    })
}

impl Store {
    /// Starts a shadow run, replacing the plugin's last one and its
    /// results; answers it.
    pub async fn start_shadow_run(&self, run: &NewShadowRun) -> Result<ShadowRun, StoreError> {
        let started_at = now_ms();
        let mut tx = self.write().await?;
        on!(&mut tx, |tx| {
            sqlx::query("DELETE FROM shadow_results WHERE plugin = $1")
                .bind(&run.plugin)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM shadow_runs WHERE plugin = $1")
                .bind(&run.plugin)
                .execute(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO shadow_runs (plugin, version, jobs, started_at, started_by)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&run.plugin)
            .bind(&run.version)
            .bind(i64::from(run.jobs))
            .bind(started_at)
            .bind(&run.started_by)
            .execute(&mut **tx)
            .await?;
        });
        tx.commit().await?;
        Ok(ShadowRun {
            plugin: run.plugin.clone(),
            version: run.version.clone(),
            jobs: run.jobs,
            started_at_ms: started_at,
            started_by: run.started_by.clone(),
            stopped_at_ms: None,
            results: Vec::new(),
        })
    }

    /// Stops the plugin's shadow run: it takes no more jobs (the ones it
    /// took still report). Answers whether a running one was stopped.
    pub async fn stop_shadow_run(&self, plugin: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let stopped = on!(&mut tx, |tx| sqlx::query(
            "UPDATE shadow_runs SET stopped_at = $2 WHERE plugin = $1 AND stopped_at IS NULL"
        )
        .bind(plugin)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok(stopped > 0)
    }

    /// The plugin's shadow run with its results, if it has one.
    pub async fn shadow_run(&self, plugin: &str) -> Result<Option<ShadowRun>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        on!(&mut conn, |conn| {
            let Some(row) = sqlx::query(
                "SELECT plugin, version, jobs, started_at, started_by, stopped_at
                 FROM shadow_runs WHERE plugin = $1",
            )
            .bind(plugin)
            .fetch_optional(&mut **conn)
            .await?
            else {
                return Ok(None);
            };
            let results = sqlx::query(
                "SELECT job_id, attempt, active_version, taken_at, report
                 FROM shadow_results WHERE plugin = $1 ORDER BY taken_at, job_id",
            )
            .bind(plugin)
            .fetch_all(&mut **conn)
            .await?
            .iter()
            .map(result_of)
            .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(ShadowRun {
                plugin: row.text("plugin")?,
                version: row.text("version")?,
                jobs: row.count("jobs")?,
                started_at_ms: row.int("started_at")?,
                started_by: row.text("started_by")?,
                stopped_at_ms: row.opt_int("stopped_at")?,
                results,
            }))
        })
    }

    /// Takes job `job_id`, whose attempt `attempt` ran on `active_version`,
    /// for the plugin's shadow run: answers the version to run beside it,
    /// or `None` when the run is stopped or has all its jobs, when it took
    /// this job already, or when its version is the one that ran.
    pub async fn take_shadow_job(
        &self,
        plugin: &str,
        job_id: &str,
        attempt: u32,
        active_version: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.write().await?;
        let taken = on!(&mut tx, |tx| {
            let row = sqlx::query(
                "SELECT version, jobs,
                     (SELECT COUNT(*) FROM shadow_results r WHERE r.plugin = s.plugin) AS taken
                 FROM shadow_runs s WHERE plugin = $1 AND stopped_at IS NULL",
            )
            .bind(plugin)
            .fetch_optional(&mut **tx)
            .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let version = row.text("version")?;
            if version == active_version || row.int("taken")? >= row.int("jobs")? {
                return Ok(None);
            }
            let inserted = sqlx::query(
                "INSERT INTO shadow_results (plugin, job_id, attempt, active_version, taken_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (plugin, job_id) DO NOTHING",
            )
            .bind(plugin)
            .bind(job_id)
            .bind(i64::from(attempt))
            .bind(active_version)
            .bind(now_ms())
            .execute(&mut **tx)
            .await?
            .rows_affected();
            (inserted == 1).then_some(version)
        });
        tx.commit().await?;
        Ok(taken)
    }

    /// Keeps the comparison of a job the plugin's shadow run took. Nothing
    /// happens when the run was replaced meanwhile.
    pub async fn finish_shadow_job(
        &self,
        plugin: &str,
        job_id: &str,
        report: &ShadowComparison,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        on!(&mut tx, |tx| sqlx::query(
            "UPDATE shadow_results SET report = $3 WHERE plugin = $1 AND job_id = $2"
        )
        .bind(plugin)
        .bind(job_id)
        .bind(to_json(report))
        .execute(&mut **tx)
        .await
        .map(drop)?);
        tx.commit().await?;
        Ok(())
    }
}
