// Polls the request's state (fed by the run's own progress file) until it is done or failed.
const state = document.getElementById("state");
const bar = document.getElementById("progress");
async function poll() {
  const response = await fetch(`/api/queries/${state.dataset.id}`);
  const status = await response.json();
  if (status.state === "done") {
    bar.value = 100; state.textContent = `done: ${status.images} images`;
    if (status.summary) {  // selected, packed, left out and why
      const counts = document.getElementById("counts"); counts.textContent = status.summary; counts.hidden = false;
    }
    document.getElementById("download").hidden = false; return;
  }
  if (status.state === "failed") { state.textContent = `failed: ${status.error}`; state.className = "error"; return; }
  if (status.total) bar.value = Math.round(90 * status.done / status.total);
  state.textContent = `${status.state}: ${status.stage || ""} ${status.total ? status.done + "/" + status.total : ""}`;
  setTimeout(poll, 1000);
}
poll();
