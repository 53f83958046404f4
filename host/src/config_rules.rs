//! What makes an ERP connection or a job definition usable, checked before
//! either is stored: whoever writes configuration (the admin API today)
//! calls these, so that a definition or connection the host accepts is one
//! the job workers and the plugin runtime can run.
//!
//! A connection's entries are checked with the very parsers the plugin
//! runtime enforces at each call (the allow-list, the base URL, the CA
//! certificates); a job definition's plugin reference with the registry's
//! parser. Each refusal names the field as the API spells it.
//! Whether what a definition names exists (its connection, its plugin) is
//! the caller's to check against the store and the registry.

use crate::domain::FieldError;
use crate::plugins;
use crate::store::{Connection, JobDefinition};

/// The only job type: a job that runs its integration processor once per
/// attempt.
pub const EXECUTION_JOB_TYPE: &str = "Execution";

/// Attempts a retry policy may allow per round, the first included.
pub const RETRY_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=100;

/// The largest backoff ceiling a retry policy may set: one day, so that a
/// typo cannot park a job for years.
pub const MAX_BACKOFF_MS: u64 = 86_400_000;

/// Checks a connection: its base URL, every `allowedHosts` entry and its CA
/// certificates with the plugin runtime's own parsers, and that no setting
/// or secret key is blank. Every problem is listed, each naming its field.
pub fn check_connection(connection: &Connection) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Err(error) = plugins::check_base_url(&connection.base_url) {
        errors.push(FieldError::new("baseUrl", error.to_string()));
    }
    if let Err(refused) = plugins::AllowedHosts::parse_each(&connection.allowed_hosts) {
        for (i, error) in refused {
            errors.push(FieldError::new(
                format!("allowedHosts[{i}]"),
                error.to_string(),
            ));
        }
    }
    if let Some(pem) = &connection.ca_certificates
        && let Err(error) = plugins::parse_ca_certificates(pem)
    {
        errors.push(FieldError::new("caCertificates", error.to_string()));
    }
    for key in connection.settings.keys().chain(connection.secrets.keys()) {
        if key.trim().is_empty() {
            errors.push(FieldError::new("settings", "keys must not be blank"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Checks a job definition's own fields: the job type, a connection name
/// and a well-formed plugin reference (`name` or `name@sha256:…`), no
/// preprocessor or post-processor (not supported yet), parameter names
/// present and unique, and a retry policy within bounds. Every problem is
/// listed, each naming its field.
pub fn check_job_definition(definition: &JobDefinition) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if definition.job_type != EXECUTION_JOB_TYPE {
        errors.push(FieldError::new(
            "jobType",
            format!("only {EXECUTION_JOB_TYPE:?} is supported"),
        ));
    }
    if definition.connection.trim().is_empty() {
        errors.push(FieldError::new("connection", "must not be blank"));
    }
    if definition.integration_processor.trim().is_empty() {
        errors.push(FieldError::new("integrationProcessor", "must not be blank"));
    } else if let Err(e) = plugins::registry::parse_reference(&definition.integration_processor) {
        errors.push(FieldError::new("integrationProcessor", e.to_string()));
    }
    if definition.preprocessor.is_some() {
        errors.push(FieldError::new(
            "preprocessor",
            "preprocessors are not supported yet: use null",
        ));
    }
    if definition.post_processor.is_some() {
        errors.push(FieldError::new(
            "postProcessor",
            "post-processors are not supported yet: use null",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in definition.parameters.iter().enumerate() {
        if p.name.trim().is_empty() {
            errors.push(FieldError::new(
                format!("parameters[{i}].name"),
                "must not be blank",
            ));
        } else if !seen.insert(p.name.as_str()) {
            errors.push(FieldError::new(
                format!("parameters[{i}].name"),
                "used twice",
            ));
        }
    }
    let retry = &definition.retry;
    if !RETRY_ATTEMPTS.contains(&retry.max_attempts) {
        errors.push(FieldError::new("retry.maxAttempts", "must be 1 to 100"));
    }
    if retry.initial_backoff_ms > MAX_BACKOFF_MS {
        errors.push(FieldError::new("retry.initialBackoffMs", "at most one day"));
    }
    if retry.max_backoff_ms > MAX_BACKOFF_MS {
        errors.push(FieldError::new("retry.maxBackoffMs", "at most one day"));
    }
    if retry.max_backoff_ms < retry.initial_backoff_ms {
        errors.push(FieldError::new(
            "retry.maxBackoffMs",
            "must be at least initialBackoffMs",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::store::{AppliesTo, JobParameter, RetryPolicy};

    fn connection() -> Connection {
        Connection {
            name: "erp".to_owned(),
            base_url: "https://erp.example.com/api".to_owned(),
            allowed_hosts: vec!["erp.example.com".to_owned()],
            allow_private_network: false,
            ca_certificates: None,
            settings: BTreeMap::from([("businessCode".to_owned(), "B1".to_owned())]),
            secrets: BTreeMap::from([("token".to_owned(), "t".to_owned())]),
        }
    }

    fn definition() -> JobDefinition {
        JobDefinition {
            name: "OrderCancel".to_owned(),
            job_type: EXECUTION_JOB_TYPE.to_owned(),
            connection: "erp".to_owned(),
            preprocessor: None,
            integration_processor: "aaas".to_owned(),
            post_processor: None,
            parameters: vec![JobParameter {
                name: "OrderNumber".to_owned(),
                value_type: "String".to_owned(),
                default_value: String::new(),
                prompt: "Order Number".to_owned(),
            }],
            retry: RetryPolicy::default(),
            enabled: true,
            applies_to: AppliesTo::default(),
        }
    }

    fn fields(result: Result<(), Vec<FieldError>>) -> Vec<String> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_connection_is_refused_for_each_entry_the_runtime_would_refuse() {
        type Edit = fn(&mut Connection);
        let cases: &[(Edit, &[&str])] = &[
            (|_| {}, &[]),
            (
                |c| c.base_url = "ftp://erp.example.com".to_owned(),
                &["baseUrl"],
            ),
            (
                |c| c.allowed_hosts = vec!["ok.example.com".to_owned(), "*".to_owned()],
                &["allowedHosts[1]"],
            ),
            (
                |c| c.ca_certificates = Some("not a certificate".to_owned()),
                &["caCertificates"],
            ),
            (
                |c| {
                    c.secrets.insert(" ".to_owned(), "x".to_owned());
                },
                &["settings"],
            ),
        ];
        for (edit, expected) in cases {
            let mut c = connection();
            edit(&mut c);
            assert_eq!(fields(check_connection(&c)), *expected, "{c:?}");
        }
    }

    #[test]
    fn a_job_definition_is_refused_for_each_field_out_of_bounds() {
        type Edit = fn(&mut JobDefinition);
        let cases: &[(Edit, &[&str])] = &[
            (|_| {}, &[]),
            (|d| d.job_type = "Batch".to_owned(), &["jobType"]),
            (|d| d.connection = " ".to_owned(), &["connection"]),
            (
                |d| d.integration_processor = String::new(),
                &["integrationProcessor"],
            ),
            (
                |d| d.integration_processor = "aaas@md5:00".to_owned(),
                &["integrationProcessor"],
            ),
            (|d| d.preprocessor = Some("p".to_owned()), &["preprocessor"]),
            (
                |d| d.post_processor = Some("p".to_owned()),
                &["postProcessor"],
            ),
            (
                |d| d.parameters.push(d.parameters[0].clone()),
                &["parameters[1].name"],
            ),
            (|d| d.retry.max_attempts = 0, &["retry.maxAttempts"]),
            (|d| d.retry.max_attempts = 101, &["retry.maxAttempts"]),
            (|d| d.retry.max_attempts = 100, &[]),
            (
                |d| {
                    d.retry.initial_backoff_ms = MAX_BACKOFF_MS;
                    d.retry.max_backoff_ms = MAX_BACKOFF_MS;
                },
                &[],
            ),
            (
                |d| d.retry.max_backoff_ms = MAX_BACKOFF_MS + 1,
                &["retry.maxBackoffMs"],
            ),
            (
                |d| {
                    d.retry.initial_backoff_ms = 2_000;
                    d.retry.max_backoff_ms = 1_000;
                },
                &["retry.maxBackoffMs"],
            ),
        ];
        for (edit, expected) in cases {
            let mut d = definition();
            edit(&mut d);
            assert_eq!(fields(check_job_definition(&d)), *expected, "{d:?}");
        }
    }
}
