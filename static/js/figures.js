// Render every server-built Plotly figure on the page; selectors reload the page with new params.
(() => {
  window.__figureErrors = [];
  const figures = Array.from(document.querySelectorAll(".plotly-figure[data-src]"));
  let done = 0;
  const finished = () => { done += 1; if (done === figures.length) document.body.dataset.figuresReady = String(done); };
  if (!figures.length) document.body.dataset.figuresReady = "0";
  figures.forEach(async (el) => {
    try {
      const response = await fetch(el.dataset.src, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`${el.dataset.src}: HTTP ${response.status}`);
      const fig = await response.json();
      await Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
      if (el.dataset.name === "medians") {
        // Picking an antenna on the median histogram filters the spectra.
        el.on("plotly_click", (event) => {
          const select = document.getElementById("antenna");
          if (select && event.points.length) { select.value = event.points[0].x; select.form.submit(); }
        });
      }
    } catch (err) {
      window.__figureErrors.push(String(err));
      el.textContent = `Figure failed: ${err}`;
    }
    finished();
  });
  document.querySelectorAll("#selectors select").forEach((s) => s.addEventListener("change", () => s.form.submit()));
})();
