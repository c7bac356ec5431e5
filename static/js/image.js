// The image page: the plane as a heatmap (RA/Dec ticks, beam, rms contours), a channel slider
// for cubes, and the spectrum at a clicked pixel. Pixel coordinates are the FITS image's.
(() => {
  const fig = document.getElementById("image-figure");
  if (!fig) return;
  const slider = document.getElementById("channel");
  const label = document.getElementById("channel-label");
  let current = null;
  let latest = 0; // the newest request: an older answer arriving late is dropped

  function decode(b64, rows, cols) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const values = new Float32Array(bytes.buffer);
    const z = [];
    for (let r = 0; r < rows; r++) {
      const row = Array.from(values.subarray(r * cols, (r + 1) * cols), (v) => (Number.isNaN(v) ? null : v));
      z.push(row);
    }
    return z;
  }

  function levels(rms, peak) {
    const out = [];
    if (!rms || !peak) return out;
    for (let k = 3; k * rms < peak; k = k < 5 ? 5 : k * 2) out.push(k * rms);
    return out;
  }

  async function draw(channel) {
    const ticket = ++latest;
    const url = `${fig.dataset.planeUrl}?channel=${channel}`;
    const data = await (await fetch(url, { credentials: "same-origin" })).json();
    if (ticket !== latest) return;
    if (data.error) { fig.textContent = data.error; return; }
    current = data;
    const [rows, cols] = data.shape;
    const z = decode(data.z, rows, cols);
    const xs = Array.from({ length: cols }, (_, i) => i * data.stride + (data.stride - 1) / 2);
    const ys = Array.from({ length: rows }, (_, i) => i * data.stride + (data.stride - 1) / 2);
    const traces = [{
      type: "heatmap", x: xs, y: ys, z, colorscale: "Viridis", colorbar: { title: { text: data.unit } },
      hovertemplate: "x %{x:.0f}, y %{y:.0f}: %{z:.4g} " + data.unit + "<extra></extra>",
    }];
    // Contours of signal to noise: the pb-corrected value times the primary beam over the rms
    // (the noise grows towards the edge of a pb-corrected image).
    if (data.snr) {
      const snr = decode(data.snr, rows, cols);
      const peak = Math.max(...snr.flat().filter((v) => v !== null));
      levels(1, peak).forEach((level) => {
        traces.push({
          type: "contour", x: xs, y: ys, z: snr, showscale: false, hoverinfo: "skip",
          contours: { start: level, end: level, size: 1, coloring: "none" },
          line: { color: "white", width: 1 }, name: `${level} rms`,
        });
      });
    }
    if (data.beam) {
      traces.push({
        type: "scatter", mode: "lines", x: data.beam.x, y: data.beam.y, fill: "toself",
        fillcolor: "rgba(230, 85, 13, 0.5)", line: { color: "#e6550d", width: 2 }, hoverinfo: "text",
        text: `beam ${data.beam.bmaj_arcsec.toFixed(2)}" x ${data.beam.bmin_arcsec.toFixed(2)}", ${data.beam.bpa_deg.toFixed(0)} deg`,
        showlegend: false,
      });
    }
    const layout = {
      title: { text: data.nchan > 1 ? `${data.name} · channel ${data.channel} · ${data.freq_ghz.toFixed(4)} GHz` : `${data.name} · ${data.freq_ghz.toFixed(4)} GHz` },
      xaxis: { title: { text: "RA (J2000)" }, tickvals: data.ticks.x.vals, ticktext: data.ticks.x.text, constrain: "domain" },
      yaxis: { title: { text: "Dec (J2000)" }, tickvals: data.ticks.y.vals, ticktext: data.ticks.y.text, scaleanchor: "x" },
      height: 640, showlegend: false, margin: { t: 40 },
    };
    await Plotly.react(fig, traces, layout, { responsive: true });
    if (!fig.dataset.bound) {
      // A click on the plot area, converted to image pixels by the axes. Bound on the document:
      // Plotly covers the page with its drag cover between mouse down and up, so the click
      // lands there, not on the figure.
      document.addEventListener("click", (event) => {
        const drag = fig.querySelector(".nsewdrag");
        if (!drag) return;
        const area = drag.getBoundingClientRect();
        if (event.clientX < area.left || event.clientX > area.right || event.clientY < area.top || event.clientY > area.bottom) return;
        const layout = fig._fullLayout;
        const x = Math.round(layout.xaxis.p2d(event.clientX - area.left));
        const y = Math.round(layout.yaxis.p2d(event.clientY - area.top));
        spectrum(x, y);
      });
      fig.dataset.bound = "1";
    }
    document.body.dataset.imageReady = "1";
    document.body.dataset.channel = String(data.channel);
  }

  async function spectrum(x, y) {
    const url = `${fig.dataset.spectrumUrl}?x=${x}&y=${y}`;
    const data = await (await fetch(url, { credentials: "same-origin" })).json();
    const where = document.getElementById("spectrum-pixel");
    if (data.error) { where.textContent = data.error; document.body.dataset.spectrumReady = "0"; return; }
    where.textContent = `pixel (${data.x}, ${data.y}) at RA ${data.ra}, Dec ${data.dec}`;
    await Plotly.react("spectrum-figure", [{
      type: "scatter", mode: data.values.length > 1 ? "lines+markers" : "markers",
      x: data.freq_ghz, y: data.values, line: { shape: "hvh" },
    }], {
      xaxis: { title: { text: "frequency (GHz)" } }, yaxis: { title: { text: data.unit } },
      height: 320, margin: { t: 20 },
    });
    document.body.dataset.spectrumReady = String(data.values.length);
  }

  if (slider) {
    slider.addEventListener("input", () => { label.textContent = slider.value; draw(Number(slider.value)); });
  }
  // A cube opens on its brightest channel (the line), not on channel 0 (often blank at the edge).
  const start = Number(fig.dataset.startChannel || 0);
  if (slider) { slider.value = String(start); label.textContent = String(start); }
  draw(start);
})();
