// The run page: poll the run's status JSON, update progress, steps and the live log tail.
(() => {
  const config = JSON.parse(document.getElementById("run-config").textContent);
  const log = document.getElementById("log");
  let openedFailed = false;

  const fmt = (s) => (s === null || s === undefined ? "" : s < 60 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);

  function render(data) {
    const pct = data.steps_total ? Math.round((100 * data.steps_done) / data.steps_total) : 0;
    document.getElementById("progress-bar").style.width = `${pct}%`;
    document.getElementById("progress-text").textContent = `${data.steps_done} / ${data.steps_total} steps`;
    const badge = document.getElementById("run-status");
    badge.textContent = data.status.charAt(0) + data.status.slice(1).toLowerCase().replace("_", " ");
    badge.className = `badge status-${data.status}`;
    document.getElementById("run-error").textContent = data.error || "";
    if (data.terminal) document.getElementById("cancel-form")?.setAttribute("hidden", "");
    for (const step of data.steps) {
      const row = document.querySelector(`tr[data-step="${step.number}"]`);
      if (!row) continue;
      const b = row.querySelector(".badge");
      b.textContent = step.status.charAt(0) + step.status.slice(1).toLowerCase().replace("_", " ");
      b.className = `badge status-${step.status}`;
      row.querySelector(".duration").textContent = fmt(step.duration_seconds);
      const notes = [];
      if (step.casa_tasks.length) notes.push(step.casa_tasks.join(", "));
      if (step.skipped_helpers.length) notes.push(`skipped ALMA-only: ${step.skipped_helpers.length}`);
      if (step.severe.length) notes.push(`SEVERE: ${step.severe.length}`);
      row.querySelector(".notes").textContent = notes.join(" · ");
      const detail = document.querySelector(`tr[data-detail="${step.number}"]`);
      const text = [step.error, step.skipped_helpers.map((c) => `skipped: ${c}`).join("\n"), step.severe.join("\n"), step.output_tail]
        .filter(Boolean).join("\n\n");
      detail.querySelector("pre").textContent = text;
      row.onclick = () => detail.toggleAttribute("hidden");
      if (step.status === "FAILED" && !openedFailed) { detail.removeAttribute("hidden"); openedFailed = true; }
    }
    // Follow the log only when the reader is at the bottom: never jump while they scroll back.
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 30;
    if (log.textContent !== data.log_tail) {
      log.textContent = data.log_tail;
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
    document.body.dataset.runStatus = data.status;
  }

  async function poll() {
    try {
      const response = await fetch(config.statusUrl, { credentials: "same-origin" });
      const data = await response.json();
      render(data);
      if (data.terminal) return;
    } catch (err) {
      console.warn("status poll failed", err);
    }
    setTimeout(poll, 1500);
  }
  poll();
})();
