// Delivery page: poll the status JSON every second while a delivery is active; reload once it ends
// (the manifest's file list and the buttons come from the server).
(function () {
  const box = document.getElementById("delivery");
  if (!box) return;
  const url = box.dataset.statusUrl;
  const mb = (n) => (n / 1048576).toFixed(1) + " MB";
  const active = (s) => s === "QUEUED" || s === "COPYING" || s === "VERIFYING";

  function show(s) {
    const badge = document.getElementById("delivery-status");
    badge.textContent = s.status_display;
    badge.className = "badge status-" + s.status;
    box.dataset.status = s.status;
    document.getElementById("delivery-bar").style.width = s.percent + "%";
    const phase = s.status === "VERIFYING" ? " re-read and compared" : s.status === "COPYING" ? " copied" : "";
    document.getElementById("delivery-progress-text").textContent =
      s.percent + "%" + (s.bytes_total ? " · " + mb(s.bytes_done) + " of " + mb(s.bytes_total) + phase : "");
    document.getElementById("delivery-error").textContent = s.error || "";
    document.getElementById("delivery-attempts").textContent = s.attempts;
    const state = document.getElementById("mous-state");
    state.textContent = s.mous_state_display;
    state.dataset.state = s.mous_state;
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const s = await response.json();
        if (s.delivery !== null) {
          show(s);
          if (!s.active) {
            window.location.reload();
            return;
          }
        }
      }
    } catch (e) {
      /* the server restarts: try again */
    }
    setTimeout(poll, 1000);
  }
  if (active(box.dataset.status)) poll();
})();
