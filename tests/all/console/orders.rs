//! The console's orders over plain HTTP: finding orders by number and by
//! customer, the order page's line tree, and the cancel form going through
//! the API's cancel path (its refusals next to their fields, nothing
//! changed; a commit as the API would make it; the CSRF token required).

use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{csrf_of, form, page, session_of, with_session};
use crate::service::{TestService, deposited_order, sample_order};

/// The text of a page's element with this `id` (up to its closing tag).
fn element_text(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\""))?;
    let open_end = start + page[start..].find('>')? + 1;
    let close = open_end + page[open_end..].find("</")?;
    Some(page[open_end..close].to_owned())
}

/// Form fields sent, the status expected, the id of the error paragraph
/// and what it says.
type RefusalCase<'a> = (&'a [(&'a str, &'a str)], StatusCode, &'a str, &'a str);

async fn post(
    service: &TestService,
    session: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Option<String>, String) {
    let answer = with_session(service, Method::POST, path, session, Some(form(fields))).await;
    let location = answer
        .headers()
        .get(LOCATION)
        .map(|l| l.to_str().unwrap_or_default().to_owned());
    (
        answer.status(),
        location,
        answer.text().await.expect("page"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_found_by_number_or_customer_and_shown_as_a_tree() {
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    service.put_order("SO-TREE", &sample_order("C-77")).await;
    service.put_order("SO 20", &deposited_order("C-77")).await;
    service.put_order("SO-OTHER", &sample_order("C-78")).await;
    let key = service.key("service", None).await;
    let session = session_of(&service, &key).await;

    let (status, html) = page(&service, &session, "/console/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<label for="customer">Customer number</label>"#));

    // By customer: that customer's orders only, each linked (the number
    // with a space encoded).
    let (status, html) = page(&service, &session, "/console/orders?customer=C-77").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"href="/console/orders/SO-TREE""#), "{html}");
    assert!(html.contains(r#"href="/console/orders/SO%2020""#), "{html}");
    assert!(!html.contains("SO-OTHER"));
    let (status, html) = page(&service, &session, "/console/orders?customer=C-404").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        element_text(&html, "customer-error").as_deref(),
        Some("Customer C-404 has no orders.")
    );

    // By number: straight to the order; an unknown one is said next to
    // its field.
    let answer = with_session(
        &service,
        Method::GET,
        "/console/orders?number=SO+20",
        &session,
        None,
    )
    .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()[LOCATION], "/console/orders/SO%2020");
    let (status, html) = page(&service, &session, "/console/orders/SO%2020").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<h1>Order SO 20</h1>"));
    let (status, html) = page(&service, &session, "/console/orders?number=SO-NONE").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains(r#"aria-describedby="number-error""#));
    assert_eq!(
        element_text(&html, "number-error").as_deref(),
        Some("There is no order SO-NONE.")
    );
    let (status, _) = page(&service, &session, "/console/orders/SO-NONE").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The tree: the warranty (parentLine 1) and the discount (appliesTo
    // [1]) under the chair, in the lines section and in the cancel form.
    let (status, html) = page(&service, &session, "/console/orders/SO-TREE").await;
    assert_eq!(status, StatusCode::OK);
    let lines = &html[html.find(r#"id="lines-heading""#).expect("lines")..];
    let lines = &lines[..lines.find("</section>").expect("end")];
    assert!(
        lines.contains(r#"<ul class="tree"><li data-line="1">"#),
        "{lines}"
    );
    let chair = &lines[lines.find(r#"data-line="1""#).unwrap()..];
    assert!(chair.find(r#"<ul><li data-line="2">"#).is_some(), "{lines}");
    assert!(
        chair.find(r#"data-line="3""#) > chair.find(r#"data-line="2""#),
        "{lines}"
    );
    assert_eq!(lines.matches("<ul class=\"tree\"><li").count(), 1);
    assert!(html.contains(r#"id="payments""#) && html.contains("pay-1"));
    assert!(html.contains(r#"id="allocations""#) && html.contains("W1"));
    assert!(html.contains("<dt>Approval</dt><dd>pending</dd>"), "{html}");
    assert!(html.contains("No cancellations."));
    // The form offers a checkbox per active line.
    for n in 1..=3 {
        assert!(html.contains(&format!(r#"id="line-{n}" name="line" value="{n}""#)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cancel_form_shows_each_refusal_next_to_its_field_and_commits_through_the_api_path() {
    let service = TestService::start_without_workers().await;
    service.configure_insite().await;
    service.put_order("SO-DEP", &deposited_order("C-5")).await;
    let key = service.key("service", None).await;
    let session = session_of(&service, &key).await;
    let (_, html) = page(&service, &session, "/console/orders/SO-DEP").await;
    let csrf = csrf_of(&html);
    let cancel = "/console/orders/SO-DEP/cancel";
    let unchanged = |order: serde_json::Value| {
        assert_eq!(order["lines"][0]["state"], "active", "{order}");
        assert_eq!(order["cancellations"], json!([]), "{order}");
    };

    // Each refusal next to the field it concerns, the form as it was sent.
    let cases: &[RefusalCase<'_>] = &[
        (
            &[("scope", "lines"), ("line", "1")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason-error",
            "cancellationReason is required",
        ),
        (
            &[("scope", "lines"), ("reason", "OUT_OF_STOCK")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "lines-error",
            "Tick the lines to cancel",
        ),
        (
            &[
                ("scope", "lines"),
                ("line", "1"),
                ("reason", "OUT_OF_STOCK"),
            ],
            StatusCode::CONFLICT,
            "forced-error",
            "set forcedCancel",
        ),
        (
            &[
                ("scope", "lines"),
                ("line", "1"),
                ("reason", "OUT_OF_STOCK"),
                ("forcedRefund", "true"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "forcedRefund-error",
            "needs forcedCancel",
        ),
        (
            &[
                ("scope", "order"),
                ("reason", "OUT_OF_STOCK"),
                ("forced", "true"),
                ("owner", "Max Mustermann"),
                ("iban", "DE89370400440532013001"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "iban-error",
            "bankDetails.iban",
        ),
        (
            &[
                ("scope", "order"),
                ("reason", "OUT_OF_STOCK"),
                ("forced", "true"),
                ("iban", "DE89370400440532013000"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "owner-error",
            "bankDetails.accountOwner",
        ),
        (
            &[
                ("scope", "order"),
                ("reason", "OUT_OF_STOCK"),
                ("date", "2099-01-01"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "date-error",
            "2099-01-01",
        ),
    ];
    for (fields, status, error_id, says) in cases {
        let mut sent = vec![("csrf", csrf.as_str())];
        sent.extend_from_slice(fields);
        let (got, _, html) = post(&service, &session, cancel, &sent).await;
        assert_eq!(got, *status, "{fields:?}: {html}");
        let message = element_text(&html, error_id)
            .unwrap_or_else(|| panic!("no #{error_id} for {fields:?}: {html}"));
        assert!(message.contains(says), "{fields:?}: {message}");
        let field = error_id.trim_end_matches("-error");
        assert!(
            html.contains(&format!(r#"aria-describedby="{error_id}""#)),
            "#{field} points at its error: {html}"
        );
        unchanged(service.order("SO-DEP").await);
    }
    // What was sent is kept: the ticked line, the reason chosen.
    let (_, _, html) = post(
        &service,
        &session,
        cancel,
        &[
            ("csrf", &csrf),
            ("scope", "lines"),
            ("line", "2"),
            ("reason", "NO_PAYMENT"),
        ],
    )
    .await;
    assert!(html.contains(r#"id="line-2" name="line" value="2" checked"#));
    assert!(html.contains(r#"<option value="NO_PAYMENT" selected>"#));

    // Without the CSRF token: refused, nothing cancelled.
    for token in ["", "0123"] {
        let (status, _, html) = post(
            &service,
            &session,
            cancel,
            &[
                ("csrf", token),
                ("scope", "lines"),
                ("line", "1"),
                ("reason", "OUT_OF_STOCK"),
                ("forced", "true"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(html.contains("security token"));
        unchanged(service.order("SO-DEP").await);
    }

    // Forced: committed as the API commits it, with its warning, and the
    // order page shows the cancellation.
    let (status, location, html) = post(
        &service,
        &session,
        cancel,
        &[
            ("csrf", &csrf),
            ("scope", "lines"),
            ("line", "1"),
            ("reason", "OUT_OF_STOCK"),
            ("forced", "true"),
            ("invoice", "INV-1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let location = location.expect("a location");
    let id = location
        .strip_prefix("/console/orders/SO-DEP?cancelled=")
        .expect("back to the order")
        .to_owned();
    let order = service.order("SO-DEP").await;
    assert_eq!(order["lines"][0]["state"], "cancelled");
    assert_eq!(order["lines"][1]["state"], "active");
    assert_eq!(order["cancellations"], json!([id]));
    let made = service
        .call(
            Method::GET,
            &format!("/v1/cancellations/{id}"),
            Some(crate::service::ADMIN),
            None,
        )
        .await;
    assert_eq!(made.body["cancellationReason"], "OUT_OF_STOCK");
    assert_eq!(made.body["warnings"][0]["code"], "not-refunded");
    let (_, html) = page(&service, &session, &location).await;
    assert!(html.contains(&format!("Cancellation {id} committed.")));
    assert!(html.contains(&format!(r#"id="cancellation-{id}""#)));
    assert!(html.contains("not-refunded"));
    // The cancelled line has no checkbox any more; the other has.
    assert!(!html.contains(r#"id="line-1" name="line""#));
    assert!(html.contains(r#"id="line-2" name="line""#));
    // The same line again is refused next to the lines.
    let (status, _, html) = post(
        &service,
        &session,
        cancel,
        &[
            ("csrf", &csrf),
            ("scope", "lines"),
            ("line", "1"),
            ("reason", "OUT_OF_STOCK"),
            ("forced", "true"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        element_text(&html, "lines-error")
            .expect("lines error")
            .contains("line 1 is already cancelled")
    );
    // The API counted the console's cancellations with its own.
    let metrics = service.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("forced-cancel-required") && !l.starts_with('#')),
        "{metrics}"
    );
}
