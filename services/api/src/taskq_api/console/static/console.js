// taskq console: the only script. Refreshes marked regions and wires "select all".
// No framework and no other origin (the page's CSP allows 'self' only).
"use strict";

function refresh(region) {
  const url = region.dataset.refresh;
  const every = Number(region.dataset.interval || 5000);
  const tick = async () => {
    try {
      const reply = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (reply.redirected && new URL(reply.url).pathname === "/ui/login") {
        window.location.assign("/ui/login");  // the login expired: never paint the form in place
      } else if (reply.ok) {
        region.innerHTML = await reply.text();
        region.dataset.refreshedAt = new Date().toISOString();
      } else if (reply.status === 401) {
        window.location.assign("/ui/login");
      }
    } catch (error) {
      // The API is restarting or unreachable: keep the last figures and try again.
    }
  };
  window.setInterval(tick, every);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(refresh);
  document.querySelectorAll("[data-select-all]").forEach((box) => {
    box.addEventListener("change", () => {
      const name = box.dataset.selectAll;
      box.form.querySelectorAll(`input[name="${name}"]`).forEach((item) => { item.checked = box.checked; });
    });
  });
});
