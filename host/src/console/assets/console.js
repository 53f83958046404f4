// Keeps the job states on a page current without a reload: every few
// seconds it asks /console/job-states for the jobs not yet settled.
(function () {
  "use strict";
  var SETTLED = ["succeeded", "failed"];
  function unsettled() {
    var ids = [];
    document.querySelectorAll("[data-job-id]").forEach(function (el) {
      if (SETTLED.indexOf(el.dataset.state) < 0 && ids.indexOf(el.dataset.jobId) < 0) ids.push(el.dataset.jobId);
    });
    return ids;
  }
  function show(job) {
    document.querySelectorAll('[data-job-id="' + job.id + '"]').forEach(function (el) {
      el.dataset.state = job.state;
      if (el.textContent !== job.state) el.textContent = job.state;
    });
    document.querySelectorAll('[data-attempts-of="' + job.id + '"]').forEach(function (el) {
      if (el.textContent !== String(job.attempts)) {
        el.textContent = String(job.attempts);
        document.querySelectorAll('[data-new-attempts-for="' + job.id + '"]').forEach(function (hint) { hint.hidden = false; });
      }
    });
    document.querySelectorAll('[data-retry-for="' + job.id + '"]').forEach(function (form) { form.hidden = job.state !== "failed"; });
  }
  function poll() {
    var ids = unsettled();
    if (ids.length === 0) return;
    fetch("/console/job-states?ids=" + encodeURIComponent(ids.join(",")), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (r.status === 401) { window.location.assign("/console/sign-in"); } return r.ok ? r.json() : null; })
      .then(function (body) { if (body) body.jobs.forEach(show); })
      .catch(function () { /* the next poll tries again */ });
  }
  setInterval(poll, 2000);
})();

// The plugin upload: a dropped .wasm goes into the file field; with
// scripts, the form is sent in the background to show the upload's
// progress, then that the host validates and compiles it. Without
// scripts the form posts as usual.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  var file = document.getElementById("file");
  if (!form || !file || !window.FormData || !window.XMLHttpRequest) return;
  var zone = file.closest(".drop");
  ["dragenter", "dragover"].forEach(function (kind) {
    zone.addEventListener(kind, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) file.files = e.dataTransfer.files;
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var box = form.querySelector(".upload-progress");
    var bar = document.getElementById("upload-progress");
    var status = document.getElementById("upload-status");
    var button = form.querySelector("button[type=submit]");
    box.hidden = false;
    bar.value = 0;
    status.textContent = "Uploading…";
    button.disabled = true;
    var xhr = new XMLHttpRequest();
    xhr.upload.onprogress = function (p) {
      if (!p.lengthComputable) return;
      bar.value = Math.round(100 * p.loaded / p.total);
      status.textContent = "Uploading: " + bar.value + " %";
    };
    xhr.upload.onload = function () {
      bar.removeAttribute("value");
      status.textContent = "Uploaded; the host validates and compiles it…";
    };
    xhr.onload = function () {
      if (xhr.responseURL && xhr.responseURL !== form.action) {
        window.location.assign(xhr.responseURL);
        return;
      }
      document.open();
      document.write(xhr.responseText);
      document.close();
    };
    xhr.onerror = function () {
      button.disabled = false;
      status.textContent = "The upload failed: the host did not answer. Try again.";
    };
    xhr.open("POST", form.action);
    xhr.send(new FormData(form));
  });
})();
