// Ingest page: poll the status JSON every second until the ingest is done or failed.
(function () {
  const box = document.getElementById("ingest-progress");
  if (!box) return;
  const url = box.dataset.statusUrl;
  const mb = (n) => (n / 1048576).toFixed(1) + " MB";

  function show(s) {
    const badge = document.getElementById("ingest-status");
    badge.textContent = s.status_display;
    badge.className = "badge status-" + s.status;
    badge.dataset.status = s.status;
    document.getElementById("ingest-bar").style.width = s.percent + "%";
    document.getElementById("ingest-progress-text").textContent =
      s.percent + "%" + (s.bytes_total ? " · " + mb(s.bytes_done) + " of " + mb(s.bytes_total) : "") +
      (s.status === "CHECKING" ? " · checking in CASA" : "");
    document.getElementById("ingest-error").textContent = s.error || "";
    const cancel = document.getElementById("ingest-cancel-form");
    if (cancel && !s.active) cancel.hidden = true;
    if (s.status === "DONE") {
      document.getElementById("ingest-data-name").textContent = s.data_name;
      document.getElementById("ingest-done").hidden = false;
    }
    if (s.summary && Object.keys(s.summary).length) {
      document.getElementById("ingest-summary-text").textContent = JSON.stringify(s.summary, null, 1);
      document.getElementById("ingest-summary").hidden = false;
    }
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const s = await response.json();
        show(s);
        if (!s.active) return;
      }
    } catch (e) {
      /* the server restarts: try again */
    }
    setTimeout(poll, 1000);
  }
  if (document.getElementById("ingest-status").dataset.status !== "DONE") poll();
})();
