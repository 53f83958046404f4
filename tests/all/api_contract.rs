//! The contract, literally: every request example of the API reference
//! (the service's own `/openapi.json`) is sent verbatim to a running
//! service, in an order that sets up what each needs, and must be answered
//! with the documented success status and an answer of the documented
//! shape: every required field present, every field of its documented type,
//! no field the document does not list.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::service::{ADMIN, TestService};

/// One request example of the document.
#[derive(Debug, Clone)]
struct Example {
    method: Method,
    /// The path template, e.g. `/v1/orders/{orderNumber}`.
    template: String,
    /// The path with each parameter's documented example.
    path: String,
    /// The example's name (`example` for a lone one).
    name: String,
    body: Value,
    /// The documented success statuses with their answer's schema.
    successes: Vec<(u16, Option<Value>)>,
}

/// Every request body example of the document, with its operation.
fn examples(document: &Value) -> Vec<Example> {
    let mut found = Vec::new();
    for (template, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let content = &operation["requestBody"]["content"]["application/json"];
            let mut bodies: Vec<(String, Value)> = Vec::new();
            if !content["example"].is_null() {
                bodies.push(("example".to_owned(), content["example"].clone()));
            }
            for (name, example) in content["examples"].as_object().into_iter().flatten() {
                bodies.push((name.clone(), example["value"].clone()));
            }
            if bodies.is_empty() {
                continue;
            }
            let mut path = template.clone();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    let name = parameter["name"].as_str().expect("a name");
                    let value = parameter["example"].as_str().unwrap_or_else(|| {
                        panic!("{template}: path parameter {name} has no example")
                    });
                    path = path.replace(&format!("{{{name}}}"), value);
                }
            }
            let successes: Vec<(u16, Option<Value>)> = operation["responses"]
                .as_object()
                .expect("responses")
                .iter()
                .filter_map(|(status, response)| {
                    let status: u16 = status.parse().ok()?;
                    (200..300).contains(&status).then(|| {
                        (
                            status,
                            response["content"]["application/json"]["schema"]
                                .as_object()
                                .map(|s| Value::Object(s.clone())),
                        )
                    })
                })
                .collect();
            for (name, body) in bodies {
                found.push(Example {
                    method: method.clone(),
                    template: template.clone(),
                    path: path.clone(),
                    name,
                    body,
                    successes: successes.clone(),
                });
            }
        }
    }
    found
}

/// Whether `value` has the shape `schema` documents (the parts of JSON
/// Schema utoipa writes: `$ref`, `oneOf`/`anyOf`/`allOf`, `type` (one or
/// several), `enum`, `properties`, `required`, `additionalProperties`,
/// `items`). An object may not carry a field its schema does not list.
fn conforms(document: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| format!("{at}: unknown reference {reference}"))?;
        return conforms(
            document,
            &document["components"]["schemas"][name],
            value,
            at,
        );
    }
    if let Some(choices) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        return if choices
            .iter()
            .any(|choice| conforms(document, choice, value, at).is_ok())
        {
            Ok(())
        } else {
            Err(format!("{at}: {value} matches none of {choices:?}"))
        };
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        conforms(document, part, value, at)?;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        let is = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            conforms(document, &schema["items"], item, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(fields) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !fields.contains_key(name) {
                return Err(format!("{at}: the required field {name} is missing"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, field) in fields {
            let at = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(property) => conforms(document, property, field, &at)?,
                None if schema["additionalProperties"].is_object() => {
                    conforms(document, &schema["additionalProperties"], field, &at)?
                }
                None if properties.is_some() => {
                    return Err(format!("{at}: the document does not list this field"));
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// What the test does, in order.
enum Step {
    /// Sends every request example of this operation (method, template).
    Send(&'static str, &'static str),
    /// Applies the insite preset (an operation without a body, so without
    /// an example of its own).
    ApplyInsitePreset,
}

/// The examples in the order that sets up what each needs: configuration
/// first (the connection before the job definitions that name it), the
/// preset after the mappings example (which maps only `A`, while the order
/// example is `Submitted`), then the order, its cancellation, a manual run
/// of it and a status report. An operation the document gains an example
/// for without a place here fails the test, and so does one it loses.
const STEPS: [Step; 12] = [
    Step::Send("POST", "/v1/admin/api-keys"),
    Step::Send("PUT", "/v1/admin/status-mappings"),
    Step::Send("PUT", "/v1/admin/settings"),
    Step::ApplyInsitePreset,
    Step::Send("PUT", "/v1/admin/websites/{website}"),
    Step::Send("PUT", "/v1/admin/connections/{name}"),
    Step::Send("PUT", "/v1/admin/job-definitions/{name}"),
    Step::Send("PUT", "/v1/orders/{orderNumber}"),
    Step::Send("POST", "/v1/orders/{orderNumber}/cancellations"),
    Step::Send("POST", "/v1/admin/job-definitions/{name}/runs"),
    Step::Send("POST", "/v1/orders/{orderNumber}/status"),
    // Last: it deletes finished jobs (none yet: no workers run).
    Step::Send("POST", "/v1/admin/jobs/prune"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_example_of_the_api_reference_is_accepted_as_documented() {
    // No workers: the jobs the examples make stay queued.
    let service = TestService::start_without_workers().await;
    let document = service.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(document.status, StatusCode::OK);
    let document = document.body;
    let examples = examples(&document);

    let mut documented: Vec<(String, String)> = examples
        .iter()
        .map(|e| (e.method.to_string(), e.template.clone()))
        .collect();
    documented.sort();
    documented.dedup();
    let mut placed: Vec<(String, String)> = STEPS
        .iter()
        .filter_map(|step| match step {
            Step::Send(method, template) => Some(((*method).to_owned(), (*template).to_owned())),
            Step::ApplyInsitePreset => None,
        })
        .collect();
    placed.sort();
    assert_eq!(documented, placed, "the operations with request examples");

    let mut sent = 0;
    for step in STEPS {
        let Step::Send(method, template) = step else {
            let a = service
                .call(Method::POST, "/v1/admin/presets/insite", Some(ADMIN), None)
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            continue;
        };
        for example in examples
            .iter()
            .filter(|e| e.method.as_str() == method && e.template == template)
        {
            let answer = service
                .call(
                    example.method.clone(),
                    &example.path,
                    Some(ADMIN),
                    Some(&example.body),
                )
                .await;
            let what = format!(
                "{} {} (example {:?})",
                example.method, example.path, example.name
            );
            let (_, schema) = example
                .successes
                .iter()
                .find(|(status, _)| *status == answer.status.as_u16())
                .unwrap_or_else(|| {
                    panic!(
                        "{what}: answered {} {}, documented {:?}",
                        answer.status,
                        answer.body,
                        example.successes.iter().map(|s| s.0).collect::<Vec<_>>()
                    )
                });
            let schema = schema
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: the answer has no documented schema"));
            if let Err(why) = conforms(&document, schema, &answer.body, "answer") {
                panic!("{what}: {why}\n{}", answer.body);
            }
            sent += 1;
        }
    }
    assert_eq!(sent, examples.len(), "every example was sent");
}
