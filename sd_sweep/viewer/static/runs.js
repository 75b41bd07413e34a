/* sd-webui-sweep: every run of the runs folder, newest first; open, resume, cancel, delete. */
(function () {
  "use strict";
  const api = new URL("../runs", location.href).href;
  const POLL_MS = Number(new URLSearchParams(location.search).get("poll") || 2000);
  let timer = null;

  const el = window.sdSweepDom.el;
  const runUrl = (run, tail) => api + "/" + encodeURIComponent(run.folder) + (tail || "");

  async function act(run, method, tail, button) {
    button.disabled = true;
    try {
      const response = await fetch(runUrl(run, tail), { method });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        alert((body.detail || []).map((p) => p.field + " " + JSON.stringify(p.value) + ": " + p.message).join("\n") || response.statusText);
      }
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  function card(run) {
    const c = run.counts || {};
    const total = c.cells || 0, done = c.done || 0;
    const thumb = el("div", { class: "sv-run-thumb" });
    if (run.thumb) thumb.append(el("img", { src: runUrl(run, "/thumbs/" + encodeURIComponent(run.thumb)), alt: "", loading: "lazy" }));
    else thumb.textContent = "no image";
    const when = run.created ? run.created.replace("T", " ").replace(/([+-]\d{4})$/, " $1") : "";
    const axes = (run.axes || []).map((a) => a.title + " (" + a.values + ")").join(" \u00d7 ") || "no axes";
    const state = run.job && run.job.state !== run.state ? run.state + ", job " + run.job.state : run.state || "unknown";
    const actions = el("div", { class: "sv-run-actions" },
      el("a", { class: "sv-link", href: "index.html?back=1&run=" + encodeURIComponent(run.folder), "data-action": "open", text: "Open" }));
    if (run.can_resume) actions.append(el("button", { type: "button", "data-action": "resume", text: "Resume", onclick: (e) => act(run, "POST", "/resume", e.target) }));
    if (run.can_cancel) actions.append(el("button", { type: "button", "data-action": "cancel", text: "Cancel", onclick: (e) => act(run, "POST", "/cancel", e.target) }));
    actions.append(el("button", { type: "button", "data-action": "delete", text: "Delete", onclick: (e) => {
      if (confirm("Delete the run folder \u201c" + run.folder + "\u201d with its " + done + " images? This cannot be undone.")) act(run, "DELETE", "", e.target);
    } }));
    const body = el("div", { class: "sv-run-body" },
      el("div", { class: "sv-run-name", text: run.name + (run.name !== run.folder ? " (" + run.folder + ")" : "") }),
      el("div", { class: "sv-run-meta", text: when + " \u00b7 " + state }),
      el("div", { class: "sv-run-meta", "data-field": "counts", text: done + "/" + total + " done" + (c.failed ? ", " + c.failed + " failed" : "") + (c.pending ? ", " + c.pending + " pending" : "") }),
      el("div", { class: "sv-progress" }, el("div", { style: "width:" + (total ? (100 * done / total).toFixed(1) : 0) + "%" })),
      el("div", { class: "sv-run-meta", text: axes }),
      run.note ? el("div", { class: "sv-run-meta", text: run.note }) : null,
      run.error ? el("div", { class: "sv-run-meta", text: run.error }) : null,
      actions);
    return el("article", { class: "sv-run sv-state-" + (run.state || "unknown"), "data-run": run.folder }, thumb, body);
  }

  async function refresh() {
    clearTimeout(timer);
    const box = document.getElementById("sv-runs");
    try {
      const response = await fetch(api, { cache: "no-store" });
      const body = await response.json();
      if (!response.ok) throw new Error((body.detail || []).map((p) => p.message).join("; ") || response.statusText);
      const runs = body.runs || [];
      box.replaceChildren(...(runs.length ? runs.map(card) : [el("p", { class: "sv-message", text: "No runs yet." })]));
      document.getElementById("sv-runs-status").textContent = runs.length + " run" + (runs.length === 1 ? "" : "s");
      if (runs.some((r) => r.state === "running" || (r.job && (r.job.state === "running" || r.job.state === "queued")))) timer = setTimeout(refresh, POLL_MS);
    } catch (err) {
      box.replaceChildren(el("p", { class: "sv-message", text: "Could not list the runs: " + err.message }));
    }
  }
  document.getElementById("sv-refresh").addEventListener("click", refresh);
  refresh();
})();
