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
