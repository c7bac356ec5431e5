// The combination page: follow the copy's progress, reload when it ends.
(() => {
  const el = document.getElementById("copy-progress");
  if (!el || !["QUEUED", "COPYING"].includes(el.dataset.status)) return;
  async function poll() {
    try {
      const data = await (await fetch(el.dataset.statusUrl, { credentials: "same-origin" })).json();
      el.querySelector(".bar").style.width = `${data.percent}%`;
      el.querySelector("span").textContent = `${data.status} ${data.percent}%`;
      if (!["QUEUED", "COPYING"].includes(data.status)) { window.location.reload(); return; }
    } catch (err) {
      console.warn("status poll failed", err);
    }
    setTimeout(poll, 1500);
  }
  poll();
})();
