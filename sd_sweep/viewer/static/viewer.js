/* sd-webui-sweep viewer: any dimension as columns, rows or page; everything after loading the
   index happens in the page (no request but thumbnails and the images opened). Works from a
   server (?run=NAME, routes /sweep/v1/runs/NAME/...) or from disk (window.SWEEP_INDEX). */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const offline = typeof window.SWEEP_INDEX === "object" && window.SWEEP_INDEX !== null;
  const runName = params.get("run") || "";
  const base = offline ? "" : new URL("../runs/" + encodeURIComponent(runName) + "/", location.href).href;
  const POLL_MS = Number(params.get("poll") || 2000);

  const S = {
    index: null,
    x: null,
    y: null,
    page: {},            // dimension name -> value index shown
    hidden: {},          // dimension name -> Set of hidden value indexes
    zoom: Number(localStorage.getItem("sd-sweep-zoom") || 192),
    byKey: new Map(),    // "i,j,k" (dimension order) -> cell
    byId: new Map(),
    els: new Map(),      // cell id -> its button, kept across layouts
    grid: [],            // shown rows of shown cells (ids or null), for arrow keys
    open: null,          // [row, col] of the cell in the lightbox
  };

  function thumbUrl(cell) {
    if (offline) return "thumbs/" + S.index.thumb_name.replace("ID", cell.id);
    return base + "thumbs/" + encodeURIComponent(cell.id);
  }
  function imageUrl(cell) {
    return offline ? cell.file : base + "files/" + cell.file.split("/").map(encodeURIComponent).join("/");
  }
  function dims() { return S.index.dimensions; }
  function dim(name) { return dims().find((d) => d.name === name) || null; }
  function title(d) { return d.title || d.name; }
  function shown(d) {
    const gone = S.hidden[d.name] || new Set();
    return d.labels.map((_, i) => i).filter((i) => !gone.has(i));
  }
  function roleOf(name) { return name === S.x ? "x" : name === S.y ? "y" : "page"; }
  function keyOf(coords) { return dims().map((d) => coords[d.name]).join(","); }

  const el = window.sdSweepDom.el;

  // -- loading ------------------------------------------------------------------------------

  function adopt(index) {
    const first = S.index === null;
    const old = S.byId;
    S.index = index;
    S.byKey = new Map();
    S.byId = new Map();
    for (const cell of index.cells) {
      S.byKey.set(keyOf(cell.coords), cell);
      S.byId.set(cell.id, cell);
      const before = old.get(cell.id);
      if (before && (before.state !== cell.state || before.file !== cell.file)) S.els.delete(cell.id);
    }
    if (first) {
      const names = dims().map((d) => d.name);
      const layout = index.layout || {};
      const pick = (v) => (v && names.includes(v) ? v : dims().find((d) => d.axes.includes(v))?.name || null);
      S.x = pick(layout.x);
      S.y = pick(layout.y);
      if (S.y === S.x) S.y = null;
      if (!layout.x && !layout.y) { S.x = names[0] || null; S.y = names[1] || null; }
      for (const d of dims()) { S.page[d.name] = 0; S.hidden[d.name] = new Set(); }
      restoreFromHash();
      renderControls();
    }
    renderStatus();
    renderGrid();
  }

  async function load() {
    if (offline) { adopt(window.SWEEP_INDEX); return; }
    if (!runName) { $("sv-message").textContent = "No run chosen (add ?run=NAME to the address)."; return; }
    try {
      const response = await fetch(base + "index", { cache: "no-store" });
      const body = await response.json();
      if (!response.ok) throw new Error((body.detail || []).map((p) => p.field + ": " + p.message).join("; ") || response.statusText);
      adopt(body);
      if (body.state === "running") setTimeout(load, POLL_MS);
    } catch (err) {
      if (S.index === null) $("sv-message").textContent = "Could not load the run: " + err.message;
      else setTimeout(load, POLL_MS * 2);
    }
  }

  // -- state in the address (so a view can be shared or reloaded) ----------------------------

  function saveToHash() {
    const h = new URLSearchParams();
    if (S.x) h.set("x", S.x);
    if (S.y) h.set("y", S.y);
    for (const d of dims()) {
      if (roleOf(d.name) === "page" && S.page[d.name]) h.set("p." + d.name, S.page[d.name]);
      if (S.hidden[d.name].size) h.set("h." + d.name, [...S.hidden[d.name]].join(","));
    }
    history.replaceState(null, "", "#" + h.toString());
  }
  function restoreFromHash() {
    const h = new URLSearchParams(location.hash.slice(1));
    const names = dims().map((d) => d.name);
    if (h.has("x") || h.has("y")) {
      S.x = names.includes(h.get("x")) ? h.get("x") : null;
      S.y = names.includes(h.get("y")) && h.get("y") !== S.x ? h.get("y") : null;
    }
    for (const d of dims()) {
      const p = Number(h.get("p." + d.name));
      if (p >= 0 && p < d.labels.length) S.page[d.name] = p;
      const gone = (h.get("h." + d.name) || "").split(",").filter((v) => v !== "").map(Number);
      S.hidden[d.name] = new Set(gone.filter((i) => i >= 0 && i < d.labels.length));
      if (S.hidden[d.name].size >= d.labels.length) S.hidden[d.name] = new Set();
    }
  }

  // -- controls -------------------------------------------------------------------------------

  function setRole(name, role) {
    const was = roleOf(name);
    if (role === was) return;
    if (role === "x" || role === "y") {
      const other = role === "x" ? S.x : S.y;
      if (role === "x") S.x = name; else S.y = name;
      if (was === "x") S.x = other;
      else if (was === "y") S.y = other;
    } else if (was === "x") S.x = null;
    else if (was === "y") S.y = null;
    renderControls();
    renderGrid();
  }

  function renderControls() {
    const box = $("sv-controls");
    box.replaceChildren();
    for (const d of dims()) {
      const role = roleOf(d.name);
      const select = el("select", { "aria-label": title(d) + " shown as", "data-dim": d.name, class: "sv-role-select",
        onchange: (e) => setRole(d.name, e.target.value) },
        el("option", { value: "x", text: "Columns", selected: role === "x" }),
        el("option", { value: "y", text: "Rows", selected: role === "y" }),
        el("option", { value: "page", text: "Page", selected: role === "page" }));
      const roleRow = el("div", { class: "sv-role" }, el("span", { text: "as" }), select);
      if (role === "page") {
        const pageSelect = el("select", { "aria-label": title(d) + " page", "data-page": d.name,
          onchange: (e) => { S.page[d.name] = Number(e.target.value); renderGrid(); } });
        for (const i of shown(d)) pageSelect.append(el("option", { value: i, text: d.labels[i], selected: i === S.page[d.name] }));
        roleRow.append(pageSelect);
      }
      const values = el("div", { class: "sv-values" });
      d.labels.forEach((label, i) => {
        const box = el("input", { type: "checkbox", "data-dim": d.name, "data-value": i, checked: !S.hidden[d.name].has(i),
          onchange: (e) => toggleValue(d, i, e.target) });
        values.append(el("label", { class: role === "page" && i === S.page[d.name] ? "sv-current" : null }, box, " " + (label || "(empty)")));
      });
      const legend = d.axes.length > 1 ? title(d) + " (zipped)" : title(d);
      box.append(el("fieldset", { class: "sv-axis", "data-dim": d.name }, el("legend", { text: legend }), roleRow, values));
    }
    if (!dims().length) box.append(el("span", { class: "sv-message", text: "This run has no axes: one image." }));
  }

  function toggleValue(d, i, input) {
    const gone = S.hidden[d.name];
    if (input.checked) gone.delete(i);
    else if (gone.size + 1 >= d.labels.length) { input.checked = true; return; }   // keep one value
    else gone.add(i);
    if (gone.has(S.page[d.name])) S.page[d.name] = shown(d)[0];
    renderControls();
    renderGrid();
  }

  function renderStatus() {
    const ix = S.index;
    const c = ix.counts || {};
    $("sv-title").textContent = ix.name || ix.folder || "Sweep";
    document.title = (ix.name || "Sweep") + " - Sweep viewer";
    const parts = [ix.state || "unknown", (c.done || 0) + "/" + (c.cells || 0) + " done"];
    if (c.failed) parts.push(c.failed + " failed");
    $("sv-status").textContent = parts.join(" \u00b7 ");
    $("sv-sheets").hidden = $("sv-zip").hidden = offline;
  }

  // -- the grid ---------------------------------------------------------------------------------

  function cellButton(cell) {
    let node = S.els.get(cell.id);
    if (node) return node;
    const labels = dims().map((d) => title(d) + ": " + d.labels[cell.coords[d.name]]).join(", ");
    node = el("button", { type: "button", class: "sv-cell", "data-id": cell.id, "data-state": cell.state, title: labels,
      onclick: () => openCell(cell.id) });
    if (cell.state === "done") node.append(el("img", { src: thumbUrl(cell), alt: labels, loading: "lazy", decoding: "async" }));
    else node.append(el("div", { class: "sv-placeholder" + (cell.state === "failed" ? " sv-failed" : ""),
      text: cell.state === "failed" ? "failed: " + (cell.error || "") : "pending" }));
    S.els.set(cell.id, node);
    return node;
  }

  function missing() {
    return el("div", { class: "sv-cell sv-missing" }, el("div", { class: "sv-placeholder", text: "not in the plan" }));
  }

  // The grid is virtualised: S.grid holds every shown cell's id (for arrow keys and downloads),
  // the table only the rows and columns in (or near) the scroll box, between spacers of the
  // measured cell size, so a page of 10,000 cells costs what a screenful does.
  const OVERSCAN = 2;

  function renderGrid() {
    const main = $("sv-main");
    const xd = S.x && dim(S.x), yd = S.y && dim(S.y);
    const xs = xd ? shown(xd) : [null], ys = yd ? shown(yd) : [null];
    const pageDims = dims().filter((d) => roleOf(d.name) === "page");
    const coords = {};
    for (const d of pageDims) coords[d.name] = S.page[d.name];
    S.grid = [];
    for (const j of ys) {
      const ids = [];
      for (const i of xs) {
        if (xd) coords[xd.name] = i;
        if (yd) coords[yd.name] = j;
        const cell = S.byKey.get(keyOf(coords));
        ids.push(cell ? cell.id : null);
      }
      S.grid.push(ids);
    }
    S.view = { xd, yd, xs, ys };
    S.win = null;
    const pageTitle = pageDims.map((d) => title(d) + ": " + d.labels[S.page[d.name]]).join(", ");
    let scroll = $("sv-scroll");
    if (!scroll) {
      scroll = el("div", { class: "sv-scroll", id: "sv-scroll", tabindex: "-1" }, el("table", { class: "sv-grid", id: "sv-grid" }));
      scroll.addEventListener("scroll", scheduleWindow, { passive: true });
      main.replaceChildren(el("h2", { class: "sv-page-title", id: "sv-page-title" }), scroll);
    }
    $("sv-page-title").textContent = pageTitle;
    renderWindow();
    if (S.open) showOpen();
    saveToHash();
  }

  let windowFrame = 0;
  function scheduleWindow() {
    if (!windowFrame) windowFrame = requestAnimationFrame(() => { windowFrame = 0; renderWindow(); });
  }

  function span(from, to, size) { return Math.max(0, to - from) * size; }
  function spacer(tag, attrs, width, height) {
    return el(tag, { class: "sv-spacer", ...attrs }, el("div", { style: "width:" + width + "px;height:" + height + "px" }));
  }

  function renderWindow(again) {
    const table = $("sv-grid"), scroll = $("sv-scroll");
    if (!table || !S.view) return;
    const { xd, yd, xs, ys } = S.view;
    const m = S.measure || (S.measure = { col: S.zoom + 5, row: S.zoom + 5, head: 28, side: 120 });
    const viewW = scroll.clientWidth || innerWidth, viewH = scroll.clientHeight || innerHeight;
    const left = Math.max(0, scroll.scrollLeft - m.side), top = Math.max(0, scroll.scrollTop - m.head);
    const c0 = Math.max(0, Math.floor(left / m.col) - OVERSCAN);
    const c1 = Math.min(xs.length, Math.ceil((left + viewW) / m.col) + OVERSCAN);
    const r0 = Math.max(0, Math.floor(top / m.row) - OVERSCAN);
    const r1 = Math.min(ys.length, Math.ceil((top + viewH) / m.row) + OVERSCAN);
    const key = [c0, c1, r0, r1].join(",");
    if (S.win === key) return;
    S.win = key;
    const head = el("tr", {}, el("th", { class: "sv-corner", text: [yd && title(yd), xd && title(xd)].filter(Boolean).join(" \\ ") }));
    if (c0 > 0) head.append(spacer("th", {}, span(0, c0, m.col), 1));
    for (let c = c0; c < c1; c++) {
      const i = xs[c];
      head.append(el("th", { scope: "col", "data-value": i },
        xd ? el("span", { class: "sv-axis-name", text: title(xd) + ": " }) : null, xd ? xd.labels[i] : ""));
    }
    if (c1 < xs.length) head.append(spacer("th", {}, span(c1, xs.length, m.col), 1));
    const body = el("tbody");
    const wide = c1 - c0 + 1 + (c0 > 0) + (c1 < xs.length);
    if (r0 > 0) body.append(el("tr", { class: "sv-spacer-row" }, spacer("td", { colspan: wide }, 1, span(0, r0, m.row))));
    for (let r = r0; r < r1; r++) {
      const j = ys[r];
      const row = el("tr", {}, el("th", { scope: "row", "data-value": j },
        yd ? el("span", { class: "sv-axis-name", text: title(yd) + ": " }) : null, yd ? yd.labels[j] : ""));
      if (c0 > 0) row.append(spacer("td", {}, span(0, c0, m.col), 1));
      for (let c = c0; c < c1; c++) {
        const id = S.grid[r][c];
        row.append(el("td", {}, id ? cellButton(S.byId.get(id)) : missing()));
      }
      if (c1 < xs.length) row.append(spacer("td", {}, span(c1, xs.length, m.col), 1));
      body.append(row);
    }
    if (r1 < ys.length) body.append(el("tr", { class: "sv-spacer-row" }, spacer("td", { colspan: wide }, 1, span(r1, ys.length, m.row))));
    table.replaceChildren(el("thead", {}, head), body);
    // measure what the browser made of it; draw again once if the guess was off
    const cellTd = body.querySelector("tr:not(.sv-spacer-row) td:not(.sv-spacer)");
    const rowTh = body.querySelector("tr:not(.sv-spacer-row) th");
    if (!cellTd || !rowTh) return;
    const got = { col: cellTd.offsetWidth, row: cellTd.parentElement.offsetHeight, head: table.tHead.offsetHeight, side: rowTh.offsetWidth };
    const off = Math.abs(got.col - m.col) > 1 || Math.abs(got.row - m.row) > 1 || Math.abs(got.head - m.head) > 1 || Math.abs(got.side - m.side) > 1;
    S.measure = got;
    if (off && !again) { S.win = null; renderWindow(true); }
  }

  // scroll the cell at [row, col] into the box (drawing it) and return its element
  function reveal(r, c) {
    const scroll = $("sv-scroll"), m = S.measure;
    if (scroll && m) {
      const x = c * m.col, y = r * m.row;
      const w = scroll.clientWidth - m.side, h = scroll.clientHeight - m.head;
      if (x < scroll.scrollLeft) scroll.scrollLeft = x;
      else if (x + m.col > scroll.scrollLeft + w) scroll.scrollLeft = x + m.col - w;
      if (y < scroll.scrollTop) scroll.scrollTop = y;
      else if (y + m.row > scroll.scrollTop + h) scroll.scrollTop = y + m.row - h;
      renderWindow();
    }
    const id = (S.grid[r] || [])[c];
    return id ? cellButton(S.byId.get(id)) : null;
  }

  // -- the full image -----------------------------------------------------------------------------

  function position(id) {
    for (let r = 0; r < S.grid.length; r++) {
      const c = S.grid[r].indexOf(id);
      if (c >= 0) return [r, c];
    }
    return null;
  }
  function openCell(id) {
    S.open = position(id);
    if (!S.open) return;
    showOpen();
  }
  function showOpen() {
    const [r, c] = S.open;
    const id = (S.grid[r] || [])[c];
    const cell = id && S.byId.get(id);
    if (!cell) { closeCell(); return; }
    document.querySelectorAll(".sv-cell.sv-selected").forEach((n) => n.classList.remove("sv-selected"));
    cellButton(cell).classList.add("sv-selected");
    const lb = $("sv-lightbox");
    lb.hidden = false;
    lb.dataset.id = cell.id;
    $("sv-lb-title").textContent = dims().map((d) => title(d) + ": " + d.labels[cell.coords[d.name]]).join(", ") || cell.id;
    $("sv-lb-labels").replaceChildren(el("li", { text: "cell " + cell.id + " \u00b7 " + cell.state }));
    const img = $("sv-lb-img");
    if (cell.state === "done") {
      img.hidden = false;
      img.src = imageUrl(cell);
      $("sv-open").href = imageUrl(cell);
      $("sv-open").hidden = false;
    } else {
      img.hidden = true;
      img.removeAttribute("src");
      $("sv-open").hidden = true;
    }
    $("sv-infotext").textContent = cell.state === "done" ? cell.infotext : cell.state === "failed" ? "Failed: " + cell.error : "Not generated yet.";
    const send = hostSend();
    for (const tab of ["txt2img", "img2img"]) $("sv-" + tab).hidden = !(send && cell.state === "done");
    $("sv-copy").disabled = cell.state !== "done";
  }
  function closeCell() {
    S.open = null;
    $("sv-lightbox").hidden = true;
    $("sv-lb-img").removeAttribute("src");
  }
  function move(dr, dc) {
    const rows = S.grid.length, cols = rows ? S.grid[0].length : 0;
    if (!rows || !cols) return;
    const [r, c] = S.open || [0, 0];
    const next = [Math.min(rows - 1, Math.max(0, r + dr)), Math.min(cols - 1, Math.max(0, c + dc))];
    if (S.open) { S.open = next; showOpen(); return; }
    const node = reveal(next[0], next[1]);
    if (node) node.focus();
  }

  function hostSend() {
    try {
      if (window.parent !== window && typeof window.parent.sdSweepSendInfotext === "function") return window.parent.sdSweepSendInfotext;
    } catch (e) { /* another origin */ }
    return null;
  }

  async function copy(text) {
    try { await navigator.clipboard.writeText(text); return true; } catch (e) { /* fall back */ }
    const area = el("textarea", { style: "position:fixed;opacity:0" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }

  // -- downloads (server-side sheets, ZIP of shown images) -----------------------------------------

  function view() {
    const hidden = {};
    for (const d of dims()) if (S.hidden[d.name].size) hidden[d.name] = [...S.hidden[d.name]];
    return { x: S.x, y: S.y, pages: dims().filter((d) => roleOf(d.name) === "page").map((d) => d.name), hidden };
  }
  function shownIds() { return S.grid.flat().filter((id) => id && S.byId.get(id).state === "done"); }
  async function download(route, body, button) {
    button.disabled = true;
    const label = button.textContent;
    button.textContent = "Preparing\u2026";
    try {
      const response = await fetch(base + route, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      if (!response.ok) {
        const problem = await response.json().catch(() => ({}));
        throw new Error((problem.detail || []).map((p) => p.field + ": " + p.message).join("; ") || response.statusText);
      }
      const name = (/filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "") || [])[1] || route;
      const url = URL.createObjectURL(await response.blob());
      const a = el("a", { href: url, download: name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      alert("Download failed: " + err.message);
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  // -- wiring ---------------------------------------------------------------------------------

  function setZoom(px) {
    S.zoom = px;
    document.documentElement.style.setProperty("--sv-cell", px + "px");
    $("sv-zoom").value = px;
    $("sv-zoom-value").textContent = px + " px";
    try { localStorage.setItem("sd-sweep-zoom", String(px)); } catch (e) { /* file:// */ }
    S.measure = null;
    S.win = null;
    scheduleWindow();
  }
  setZoom(S.zoom);
  $("sv-zoom").addEventListener("input", (e) => setZoom(Number(e.target.value)));
  window.addEventListener("resize", scheduleWindow);
  $("sv-close").addEventListener("click", closeCell);
  $("sv-lightbox").addEventListener("click", (e) => { if (e.target.classList.contains("sv-lb-image")) closeCell(); });
  $("sv-copy").addEventListener("click", async () => {
    const ok = await copy($("sv-infotext").textContent);
    $("sv-copy").textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => { $("sv-copy").textContent = "Copy infotext"; }, 1500);
  });
  for (const tab of ["txt2img", "img2img"]) {
    $("sv-" + tab).addEventListener("click", () => {
      const send = hostSend();
      if (send) send($("sv-infotext").textContent, tab);
    });
  }
  $("sv-sheets").addEventListener("click", (e) => download("sheets", view(), e.currentTarget));
  $("sv-zip").addEventListener("click", (e) => download("zip", { ids: shownIds() }, e.currentTarget));
  if (!offline && params.has("back")) $("sv-back").hidden = false;
  document.addEventListener("keydown", (e) => {
    if (!S.index) return;
    const inLightbox = !$("sv-lightbox").hidden;
    if (e.key === "Escape" && inLightbox) { closeCell(); return; }
    const arrows = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    if (!(e.key in arrows)) return;
    const tag = (document.activeElement && document.activeElement.tagName) || "";
    if (!inLightbox && ["INPUT", "SELECT", "TEXTAREA"].includes(tag)) return;
    e.preventDefault();
    if (!inLightbox) {
      const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.id : null;
      const at = focused ? position(focused) : null;
      if (!at) { move(0, 0); return; }
      S.open = at;
      const [dr, dc] = arrows[e.key];
      const rows = S.grid.length, cols = S.grid[0].length;
      const next = [Math.min(rows - 1, Math.max(0, at[0] + dr)), Math.min(cols - 1, Math.max(0, at[1] + dc))];
      S.open = null;
      const node = reveal(next[0], next[1]);
      if (node) node.focus();
      return;
    }
    move(...arrows[e.key]);
  });

  window.sdSweepViewer = { state: S, setRole, reload: load };
  load();
})();
