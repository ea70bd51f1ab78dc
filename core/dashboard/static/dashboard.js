// recfw dashboard: confirmations, copy buttons, live recordings. No build step.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset && form.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  if (!input) return;
  input.select();
  let copied = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(input.value);
      copied = true;
    }
  } catch (e) {
    copied = false;
  }
  const label = button.textContent;
  button.textContent = copied ? "Copied" : "Selected: press Ctrl+C";
  setTimeout(() => { button.textContent = label; }, 2000);
});

// While a recording is recording or uploading, refresh the table's rows every 2 s.
function liveRecordings() {
  const table = document.getElementById("recordings");
  if (!table || table.dataset.live !== "yes") return;
  const url = new URL(table.dataset.rowsUrl, window.location.href.replace(/recordings.*$/, ""));
  const tick = async () => {
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (answer.ok) {
        const html = await answer.text();
        table.tBodies[0].innerHTML = html;
        const live = table.querySelector('tr[data-status="recording"], tr[data-status="uploading"]');
        if (!live) { table.dataset.live = "no"; return; }
      } else if (answer.status === 401) {
        window.location.reload();
        return;
      }
    } catch (e) {
      // the server is restarting: try again at the next tick
    }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
}

document.addEventListener("DOMContentLoaded", liveRecordings);
