// The MOUS page: each EB's latest run progress, polled from the run's status JSON (as the run page does).
(() => {
  const bars = Array.from(document.querySelectorAll(".run-progress[data-status-url]"));
  const label = (s) => s.charAt(0) + s.slice(1).toLowerCase().replace("_", " ");
  async function poll(el) {
    try {
      const response = await fetch(el.dataset.statusUrl, { credentials: "same-origin" });
      const data = await response.json();
      const pct = data.steps_total ? Math.round((100 * data.steps_done) / data.steps_total) : 0;
      el.querySelector(".bar").style.width = `${pct}%`;
      el.querySelector("span").textContent = `${data.steps_done} / ${data.steps_total} steps`;
      const badge = el.closest("tr").querySelector(".run-status");
      if (badge) { badge.textContent = label(data.status); badge.className = `badge status-${data.status} run-status`; }
      el.dataset.runStatus = data.status;
      if (data.terminal) return;
    } catch (err) {
      console.warn("status poll failed", err);
    }
    setTimeout(() => poll(el), 2000);
  }
  bars.forEach(poll);
})();
