//! The issue's end-to-end round in headless Chromium: an admin signs in,
//! applies the websphere preset, creates a website and a connection,
//! uploads a plugin (through the upload form's script), binds a job
//! definition to it, cancels an order line from the order page (after a
//! refusal shown next to its field), watches the job succeed and reads the
//! attempt's ERP exchange, uploads a second version and rolls back to the
//! first; a form without its CSRF token is refused; a service key cannot
//! reach the configuration. Every screen passes the accessibility check and
//! is written as a screenshot under `target/console-screens/`.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::json;

use super::browser::Browser;
use crate::hotload_support::{SIGNING_KEY, echoing_erp};
use crate::registry_support::{trivial, version_of, webhook};
use crate::service::{ADMIN, TestService};

/// Where the screenshots go: the workspace's `target/console-screens/`.
fn screens() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("console-screens");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// Checks the page's accessibility and writes its screenshot.
async fn screen(browser: &Browser, name: &str) {
    assert_eq!(
        browser.accessibility_gaps().await,
        Vec::<String>::new(),
        "{name}"
    );
    let png = browser.client.screenshot().await.expect("screenshot");
    std::fs::write(screens().join(format!("{name}.png")), png).expect("screenshot written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_configures_uploads_cancels_from_the_order_page_and_rolls_back() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let erp = echoing_erp().await;
    let service = TestService::start().await;
    let created = service
        .call(
            Method::POST,
            "/v1/admin/api-keys",
            Some(ADMIN),
            Some(&json!({"name": "operator-dee", "role": "admin"})),
        )
        .await;
    let admin_key = created.body["token"].as_str().expect("token").to_owned();
    let service_key = service.key("service", None).await;
    let base = &service.base;
    let wasm_dir = tempfile::tempdir().expect("a directory for the uploads");
    let (v1_path, v2_path) = (
        wasm_dir.path().join("hook-v1.wasm"),
        wasm_dir.path().join("hook-v2.wasm"),
    );
    std::fs::write(&v1_path, webhook()).expect("v1");
    std::fs::write(&v2_path, trivial()).expect("v2");
    let (v1, v2) = (version_of(&webhook()), version_of(&trivial()));

    // Sign in.
    browser.goto(&format!("{base}/console/sign-in")).await;
    screen(&browser, "sign-in").await;
    browser.type_into("#key", &admin_key).await;
    browser.press_to_load("#key", "\u{E007}").await;
    assert_eq!(browser.text("h1").await, "Overview");
    screen(&browser, "overview").await;

    // The websphere preset.
    browser.click_to_load("nav a[href='/console/config']").await;
    assert_eq!(browser.text("h1").await, "Configuration");
    browser.click("#preset option[value=websphere]").await;
    browser
        .click_to_load("form[action='/console/config/preset'] button")
        .await;
    assert!(browser.text(".notice").await.contains("websphere preset"));
    let settings = service
        .call(Method::GET, "/v1/admin/settings", Some(ADMIN), None)
        .await;
    assert_eq!(settings.body["cancelledStatus"], "X");

    // A website with its switch on.
    browser.type_into("#website-name", "main").await;
    browser.click("#website-allow").await;
    browser.click_to_load("#website-form button").await;
    assert!(browser.text(".notice").await.contains("website main"));
    assert_eq!(
        browser
            .attr("tr[data-website=main] input[type=checkbox]", "checked")
            .await
            .as_deref(),
        Some("true")
    );
    screen(&browser, "configuration").await;

    // A connection to the ERP, its signing key write-only.
    browser
        .click_to_load(".subnav a[href='/console/config/connections']")
        .await;
    browser.type_into("#name", "erp").await;
    browser.type_into("#baseUrl", &erp.url("")).await;
    browser.type_into("#allowedHosts", &erp.authority()).await;
    browser.type_into("#settings", "path=/hooks/cancel").await;
    browser
        .type_into("#secrets", &format!("signingKey={SIGNING_KEY}"))
        .await;
    browser.click_to_load("#connection-form button").await;
    assert!(browser.text(".notice").await.contains("connection"));
    assert!(browser.text("#stored-secrets").await.contains("signingKey"));
    let page = browser.client.source().await.expect("source");
    assert!(!page.contains(SIGNING_KEY), "the secret is not in the page");
    screen(&browser, "connections").await;

    // Upload the plugin: the script sends the form and shows its progress,
    // then the plugin's page.
    browser
        .click_to_load("nav a[href='/console/plugins']")
        .await;
    assert_eq!(browser.text("h1").await, "Plugins");
    screen(&browser, "plugins").await;
    browser.type_into("#name", "console-hook").await;
    browser
        .client
        .find(fantoccini::Locator::Css("#file"))
        .await
        .expect("the file field")
        .send_keys(&v1_path.display().to_string())
        .await
        .expect("a file chosen");
    browser.click("#upload-form button").await;
    browser.wait_for_text("h1", "Plugin console-hook").await;
    assert_eq!(
        browser.text("#active-version").await,
        v1,
        "stored and active"
    );
    assert!(browser.text(".notice").await.contains("is stored"));

    // Bind the job definition to it.
    browser
        .goto(&format!("{base}/console/config/job-definitions"))
        .await;
    browser.type_into("#name", "OrderCancel").await;
    browser.click("#connection option[value=erp]").await;
    browser
        .type_into("#integrationProcessor", "console-hook")
        .await;
    browser.type_into("#maxAttempts", "3").await;
    browser.type_into("#initialBackoffMs", "10").await;
    browser.type_into("#maxBackoffMs", "20").await;
    browser.click_to_load("#definition-form button").await;
    assert!(browser.text(".notice").await.contains("job definition"));
    screen(&browser, "job-definitions").await;

    // An order in a cancellable websphere status, found by its number.
    let mut order = crate::service::sample_order("C-21");
    order["status"] = json!("M");
    service.put_order("SO-ROUND", &order).await;
    browser.click_to_load("nav a[href='/console/orders']").await;
    browser.type_into("#customer", "C-21").await;
    browser.click_to_load("form.filters button").await;
    assert_eq!(
        browser
            .text("#orders a[href='/console/orders/SO-ROUND']")
            .await,
        "SO-ROUND"
    );
    screen(&browser, "orders").await;
    browser.type_into("#number", "SO-ROUND").await;
    browser.click_to_load("form.filters button").await;
    assert_eq!(browser.text("h1").await, "Order SO-ROUND");
    // The tree: the warranty and the discount under the chair.
    assert_eq!(
        browser
            .text("ul.tree > li[data-line='1'] > ul > li[data-line='2'] .line-no")
            .await,
        "Line 2"
    );

    // A refusal, next to its field: no reason chosen.
    browser.click("#line-1").await;
    browser
        .click_to_load("#cancel-form button[type=submit]")
        .await;
    assert!(
        browser
            .text("#reason-error")
            .await
            .contains("cancellationReason is required")
    );
    assert_eq!(
        browser.attr("#reason", "aria-describedby").await.as_deref(),
        Some("reason-error")
    );
    assert_eq!(
        browser.attr("#line-1", "checked").await.as_deref(),
        Some("true"),
        "the form as it was sent"
    );
    screen(&browser, "order-refused").await;

    // Cancelled: the job runs on the plugin and succeeds, on this page.
    browser.click("#reason option[value=OUT_OF_STOCK]").await;
    browser
        .click_to_load("#cancel-form button[type=submit]")
        .await;
    assert!(browser.text(".notice").await.contains("committed"));
    let job_id = browser
        .attr(".cancellation-jobs [data-job-id]", "data-job-id")
        .await
        .expect("the job");
    browser
        .wait_for_text(&format!("[data-job-id='{job_id}']"), "succeeded")
        .await;
    screen(&browser, "order").await;
    let order = service.order("SO-ROUND").await;
    assert_eq!(order["lines"][0]["state"], "cancelled");

    // The job's attempt, with its plugin version and the ERP exchange.
    browser
        .click_to_load(&format!(
            ".cancellation-jobs a[href='/console/jobs/{job_id}']"
        ))
        .await;
    assert_eq!(browser.text(".attempt .outcome").await, "accepted");
    assert_eq!(browser.text(".attempt code.version").await, v1);
    assert!(browser.text(".exchange h4").await.contains("/hooks/cancel"));
    assert_eq!(browser.text(".exchange .erp-status").await, "HTTP 201");
    screen(&browser, "job").await;

    // Jobs filtered by time: from an hour ahead, none.
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let from = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        later.year(),
        u8::from(later.month()),
        later.day(),
        later.hour(),
        later.minute()
    );
    browser
        .goto(&format!("{base}/console/jobs?from={from}"))
        .await;
    assert_eq!(
        browser.text("main > p:last-of-type").await,
        "No jobs match."
    );
    browser.goto(&format!("{base}/console/jobs")).await;
    assert_eq!(
        browser
            .text(&format!("#jobs a[href='/console/jobs/{job_id}']"))
            .await,
        job_id
    );
    screen(&browser, "jobs").await;

    // Run now asks for the definition's parameters.
    browser
        .goto(&format!("{base}/console/jobs/run?definition=OrderCancel"))
        .await;
    assert!(
        browser
            .text("label[for=parameter-0]")
            .await
            .contains("OrderNumber")
    );
    screen(&browser, "run-now").await;

    // A second version, dropped on the upload field as a file dragged from
    // the desktop is (a drop event carrying the file), then the rollback
    // to the first.
    browser.goto(&format!("{base}/console/plugins")).await;
    browser.type_into("#name", "console-hook").await;
    let v2_bytes = std::fs::read(&v2_path).expect("v2");
    let dropped = browser
        .client
        .execute(
            r#"const [name, encoded] = arguments;
            const bytes = Uint8Array.from(atob(encoded), c => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], name, {type: "application/wasm"}));
            const zone = document.querySelector(".drop");
            const event = kind => new DragEvent(kind, {dataTransfer: data, bubbles: true, cancelable: true});
            zone.dispatchEvent(event("dragover"));
            const highlighted = zone.classList.contains("over");
            zone.dispatchEvent(event("drop"));
            const files = document.getElementById("file").files;
            return [highlighted, zone.classList.contains("over"),
                    files.length ? files[0].name + " " + files[0].size : "no file"];"#,
            vec![
                json!("dropped.wasm"),
                json!(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    &v2_bytes
                )),
            ],
        )
        .await
        .expect("the drop runs");
    assert_eq!(
        dropped,
        json!([true, false, format!("dropped.wasm {}", v2_bytes.len())]),
        "the drop zone lights up while a file is over it, and the dropped file fills the field"
    );
    browser.click("#upload-form button").await;
    browser.wait_for_text("#active-version", &v2).await;
    browser
        .click_to_load("button[aria-label='Roll back to version 1']")
        .await;
    assert_eq!(browser.text("#active-version").await, v1);
    assert!(browser.text("#history").await.contains("rolled-back"));
    screen(&browser, "plugin").await;

    // A form whose CSRF token is taken out is refused, and changes nothing.
    browser
        .goto(&format!("{base}/console/config/api-keys"))
        .await;
    screen(&browser, "api-keys").await;
    browser.type_into("#keyName", "csrf-less").await;
    browser
        .run("document.querySelector('#key-form input[name=csrf]').remove(); return null")
        .await;
    browser.click_to_load("#key-form button").await;
    assert!(browser.text("main").await.contains("security token"));
    let keys = service
        .call(Method::GET, "/v1/admin/api-keys", Some(ADMIN), None)
        .await;
    assert!(!keys.body.to_string().contains("csrf-less"));
    browser.goto(&format!("{base}/console/config/audit")).await;
    assert!(browser.text("#audit").await.contains("operator-dee"));
    screen(&browser, "audit").await;

    // A service key: no configuration.
    browser.goto(&format!("{base}/console")).await;
    browser.click_to_load(".who button").await;
    browser.type_into("#key", &service_key).await;
    browser.press_to_load("#key", "\u{E007}").await;
    assert_eq!(browser.text("h1").await, "Overview");
    let nav = browser.text("nav[aria-label=Console]").await;
    assert!(
        !nav.contains("Configuration") && !nav.contains("Plugins"),
        "{nav}"
    );
    browser.goto(&format!("{base}/console/config")).await;
    assert_eq!(browser.text("h1").await, "Forbidden");
    assert!(
        browser
            .text("main")
            .await
            .contains("A service key may not change the configuration")
    );
    browser.close().await;
    assert_eq!(
        service
            .call(
                Method::GET,
                "/v1/admin/plugins/console-hook",
                Some(ADMIN),
                None
            )
            .await
            .body["active"],
        v1.as_str()
    );
}
