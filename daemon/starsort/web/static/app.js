// starsort review page. No framework and no build step: the service ships this file as is.
// Everything shown from a photo (names, EXIF, reasons) goes in through textContent, never as HTML.
"use strict";

const PAGE = 200;
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

const state = {
  photos: new Map(),      // id -> photo, as /api/photos gives it
  tiles: new Map(),       // id -> tile element, kept so images are never fetched twice
  order: [],              // ids in the grid, newest first
  focus: null,            // the one photo every key acts on
  view: {},               // the filter: {stars} | {filter} | {filter: "quarantined", reason}
  cursor: null,           // id of the last photo loaded (paging)
  exhausted: false,
  loading: false,
  seq: 0,                 // the last change seen
  threshold: null,        // blur.threshold in force
  follow: false,
  busy: new Set(),        // photos with a change on its way
  loupe: false,
  zoomed: false,
  compare: null,          // {frames, pinned, offset, focusPane, view}
};

// ---- talking to the service ---------------------------------------------------

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (r.status === 401) { signedOut(); throw new Error("signed out"); }
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return [await r.json(), r];
}

async function post(url, body) {
  const r = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Starsort": "1" },
    body: JSON.stringify(body),
  });
  if (r.status === 401) { signedOut(); return null; }
  const data = await r.json().catch(() => ({}));
  if (r.status !== 202) toast(data.error || `refused (${r.status})`, true);
  return data;
}

function signedOut() {
  document.body.textContent = "";
  document.body.append(el("p", "empty", "Signed out. Open the page again with `starsort review`."));
}

function query(extra) {
  const q = new URLSearchParams();
  const v = state.view;
  if (v.stars) q.set("stars", v.stars);
  if (v.filter) q.set("filter", v.filter);
  if (v.reason) q.set("reason", v.reason);
  for (const [k, val] of Object.entries(extra || {})) q.set(k, val);
  return q.toString();
}

// ---- the grid -----------------------------------------------------------------

function starsText(n) {
  const s = el("span", "stars");
  for (let i = 1; i <= 5; i++) {
    const c = el("span", i <= (n || 0) ? "" : "off", "★");
    s.append(c);
  }
  return s;
}

function tileFor(p) {
  let t = state.tiles.get(p.id);
  if (!t) {
    t = el("div", "tile");
    t.tabIndex = -1;
    t.dataset.id = p.id;
    const thumb = el("div", "thumb");
    const meta = el("div", "meta");
    t.append(thumb, meta, el("div", "badges"));
    t.addEventListener("click", () => setFocus(p.id));
    t.addEventListener("dblclick", () => { setFocus(p.id); openLoupe(); });
    state.tiles.set(p.id, t);
  }
  paintTile(t, p);
  return t;
}

function paintTile(t, p) {
  t.className = "tile";
  if (p.verdict) t.classList.add(p.verdict);
  if (p.decided_by === "photographer") t.classList.add("decided");
  if (p.rejected) t.classList.add("rejected");
  if (state.focus === p.id) t.classList.add("focused");
  t.title = p.why || p.error || p.name;
  const thumb = t.querySelector(".thumb");
  const want = p.preview ? `/api/photos/${p.id}/preview/s?v=${p.preview}` : null;
  const img = thumb.querySelector("img");
  if (want && (!img || img.dataset.src !== want)) {
    thumb.textContent = "";
    const i = el("img");
    i.loading = "lazy";
    i.decoding = "async";
    i.alt = p.name;
    i.dataset.src = want;
    i.src = want;
    thumb.append(i);
  } else if (!want) {
    thumb.textContent = "";
    const why = p.state === "quarantined" ? `quarantined: ${p.error || ""}`
      : p.state === "queued" ? "being analysed…" : p.state === "done" ? "no preview yet" : p.state;
    thumb.append(el("div", "placeholder", why));
  }
  const meta = t.querySelector(".meta");
  meta.textContent = "";
  meta.append(el("span", "name", p.name));
  if (p.state === "done") meta.append(p.rejected ? el("span", "badge reject", "rejected") : starsText(p.stars));
  const badges = t.querySelector(".badges");
  badges.textContent = "";
  if (p.is_pick && p.burst_size >= 2) badges.append(el("span", "badge pick", p.pick_by === "photographer" ? "PICK ✓" : "PICK"));
  if (state.busy.has(p.id)) badges.append(el("span", "badge busy", "moving…"));
}

function render() {
  const grid = $("grid");
  const frag = document.createDocumentFragment();
  let group = null, groupCluster = null;
  for (const id of state.order) {
    const p = state.photos.get(id);
    const t = tileFor(p);
    if (p.cluster_id && p.burst_size >= 2) {
      if (groupCluster !== p.cluster_id) {
        group = el("div", "burst");
        group.dataset.cluster = p.cluster_id;
        group.append(el("span", "burst-label", `burst · ${p.burst_size}`));
        frag.append(group);
        groupCluster = p.cluster_id;
      }
      group.append(t);
    } else {
      group = null; groupCluster = null;
      frag.append(t);
    }
  }
  grid.textContent = "";
  grid.append(frag);
  if (!state.order.length) grid.append(el("div", "empty", state.loading ? "Loading…" : "No photos here yet."));
  $("more").textContent = state.exhausted ? "" : state.loading ? "Loading…" : "Scroll for more";
}

let renderQueued = false;
function renderSoon() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

async function loadPage() {
  if (state.loading || state.exhausted) return;
  state.loading = true;
  const extra = { limit: PAGE };
  if (state.cursor !== null) extra.after = state.cursor;
  try {
    const [rows, r] = await getJSON(`/api/photos?${query(extra)}`);
    if (state.cursor === null) state.seq = Math.max(state.seq, Number(r.headers.get("x-starsort-seq") || 0));
    for (const p of rows) {
      if (!state.photos.has(p.id)) state.order.push(p.id);
      state.photos.set(p.id, p);
    }
    if (rows.length) state.cursor = rows[rows.length - 1].id;
    if (rows.length < PAGE) state.exhausted = true;
    if (state.focus === null && state.order.length) state.focus = state.order[0];
  } finally {
    state.loading = false;
  }
  render();
  if (state.focus !== null) markFocus();
}

async function reload() {
  state.photos.clear(); state.order = []; state.cursor = null; state.exhausted = false; state.focus = null;
  await loadPage();
  startEvents();
}

function matches(p) {
  const v = state.view;
  if (p.state === "undone") return false;
  if (v.stars) return p.state === "done" && !p.rejected && p.stars === v.stars;
  switch (v.filter) {
    case "rejected": return p.rejected;
    case "picks": return p.is_pick && p.burst_size >= 2;
    case "unreviewed": return p.state === "done" && p.decided_by === "machine";
    case "borderline": return p.state === "done" && p.verdict === "borderline";
    case "quarantined": return p.state === "quarantined" && (!v.reason || p.error === v.reason);
  }
  return true;
}

function upsert(p) {
  const known = state.photos.has(p.id);
  state.photos.set(p.id, p);
  state.busy.delete(p.id);
  if (known) {
    const t = state.tiles.get(p.id);
    if (t) paintTile(t, p);
    const structural = t && (t.parentElement && t.parentElement.classList.contains("burst")) !== (p.burst_size >= 2 && !!p.cluster_id);
    if (structural || (t && t.parentElement && t.parentElement.dataset.cluster && Number(t.parentElement.dataset.cluster) !== p.cluster_id)) renderSoon();
    if (state.loupe && state.focus === p.id) paintLoupe();
    return;
  }
  if (!matches(p)) return;
  const newest = state.order.length ? state.order[0] : -1;
  if (p.id > newest) {
    state.order.unshift(p.id);
    renderSoon();
    requestAnimationFrame(() => { const t = state.tiles.get(p.id); if (t) t.classList.add("fresh"); });
    if (state.follow) { setFocus(p.id); window.scrollTo({ top: 0 }); }
  }
}

// ---- focus and keys -----------------------------------------------------------

function markFocus() {
  for (const t of document.querySelectorAll(".tile.focused")) t.classList.remove("focused");
  const t = state.tiles.get(state.focus);
  if (t) {
    t.classList.add("focused");
    t.scrollIntoView({ block: "nearest" });
  }
}

function setFocus(id) {
  if (id === null || id === undefined || !state.photos.has(id)) return;
  state.focus = id;
  markFocus();
  if (state.loupe) paintLoupe();
  if (state.order.indexOf(id) > state.order.length - 20) loadPage();
}

function step(delta) {
  const i = state.order.indexOf(state.focus);
  const j = Math.min(state.order.length - 1, Math.max(0, (i < 0 ? 0 : i) + delta));
  setFocus(state.order[j]);
}

function stepBurst(delta) {
  // The first photo of the previous or next group (a burst, or a photo on its own).
  const groupOf = (id) => { const p = state.photos.get(id); return p.cluster_id && p.burst_size >= 2 ? `c${p.cluster_id}` : `p${id}`; };
  let i = state.order.indexOf(state.focus);
  if (i < 0) return;
  const here = groupOf(state.order[i]);
  if (delta > 0) {
    while (i < state.order.length && groupOf(state.order[i]) === here) i++;
    if (i < state.order.length) setFocus(state.order[i]);
  } else {
    while (i > 0 && groupOf(state.order[i - 1]) === here) i--;
    if (i === 0) return;
    const prev = groupOf(state.order[i - 1]);
    i--;
    while (i > 0 && groupOf(state.order[i - 1]) === prev) i--;
    setFocus(state.order[i]);
  }
}

function focusedPhoto() {
  if (state.compare) return state.compare.frames[paneIndex(state.compare.focusPane)];
  return state.photos.get(state.focus);
}

async function change(body, advance) {
  const p = focusedPhoto();
  if (!p) return;
  if (p.state !== "done") { toast(`${p.name} is ${p.state}: it can be rated once it is filed`, true); return; }
  state.busy.add(p.id);
  const t = state.tiles.get(p.id);
  if (t) paintTile(t, p);
  const r = await post(`/api/photos/${p.id}`, body);
  if (!r || !r.accepted) { state.busy.delete(p.id); if (t) paintTile(t, p); }
  if (advance && !state.compare) step(1);
}

function onKey(e) {
  if (e.target && (e.target.tagName === "INPUT")) return;
  const k = e.key;
  if (k === "Escape") {
    if (!$("help").hidden) { $("help").hidden = true; return; }
    if (state.compare) { closeCompare(); return; }
    if (state.loupe) { closeLoupe(); return; }
    return;
  }
  if ((e.ctrlKey || e.metaKey) && k.toLowerCase() === "z") { e.preventDefault(); undo(); return; }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const digit = e.code && e.code.startsWith("Digit") ? e.code.slice(5) : (/^[0-5]$/.test(k) ? k : null);
  if (digit !== null && digit >= "1" && digit <= "5") { e.preventDefault(); change({ stars: Number(digit) }, e.shiftKey); return; }
  if (digit === "0" || k === "u" || k === "U") { e.preventDefault(); change({ machine: true }, false); return; }
  switch (k) {
    case "x": case "X": e.preventDefault(); change({ reject: true }, e.shiftKey); return;
    case "P": if (state.compare) { pin(); return; } change({ pick: true }, false); return;
    case "p": change({ pick: true }, false); return;
    case "ArrowRight": e.preventDefault(); state.compare ? compareStep(1) : step(1); return;
    case "ArrowLeft": e.preventDefault(); state.compare ? compareStep(-1) : step(-1); return;
    case "ArrowDown": if (!state.loupe && !state.compare) { e.preventDefault(); stepBurst(1); } return;
    case "ArrowUp": if (!state.loupe && !state.compare) { e.preventDefault(); stepBurst(-1); } return;
    case "Enter": case " ": e.preventDefault(); if (!state.compare) openLoupe(); return;
    case "z": case "Z": if (state.loupe) toggleZoom(lastPointer); return;
    case "c": case "C": state.compare ? closeCompare() : openCompare(); return;
    case "f": case "F": setFollow(!state.follow); return;
    case "?": $("help").hidden = !$("help").hidden; return;
  }
}

async function undo() {
  const r = await post("/api/undo", {});
  if (r && r.accepted) toast("Undoing the last change…");
}

function setFollow(on) {
  state.follow = on;
  $("follow").setAttribute("aria-pressed", String(on));
  if (on && state.order.length) { setFocus(state.order[0]); window.scrollTo({ top: 0 }); }
}

// ---- loupe --------------------------------------------------------------------

let lastPointer = null;
const loupe = { scale: 1, x: 0, y: 0, natW: 0, natH: 0 };

function openLoupe() {
  if (!focusedPhoto()) return;
  state.loupe = true;
  $("loupe").hidden = false;
  paintLoupe();
}

function closeLoupe() {
  state.loupe = false; state.zoomed = false;
  $("loupe").hidden = true;
  markFocus();
}

function paintLoupe() {
  const p = state.photos.get(state.focus);
  if (!p) return;
  $("loupe-title").textContent = `${p.name}${p.camera_model ? " · " + p.camera_model : ""}${p.captured_at ? " · " + p.captured_at.replace("T", " ") : ""}`;
  const s = $("loupe-stars");
  s.textContent = "";
  if (p.state === "done") s.append(p.rejected ? el("span", "badge reject", "rejected") : starsText(p.stars));
  if (p.decided_by === "photographer") s.append(el("span", "muted", " your call"));
  $("loupe-why").textContent = p.why || p.error || "";
  const img = $("loupe-img");
  const src = p.preview ? `/api/photos/${p.id}/preview/l?v=${p.preview}` : "";
  state.zoomed = false;
  $("loupe-stage").classList.remove("zoomed");
  if (img.dataset.src !== src) { img.dataset.src = src; img.src = src; }
  drawFaces(p);
  fitLoupe(p);
  prefetch(p.id);
}

function fitLoupe(p) {
  const stage = $("loupe-stage").getBoundingClientRect();
  const w = p.width || 3, h = p.height || 2;
  const scale = Math.min(stage.width / w, stage.height / h);
  loupe.scale = scale;
  loupe.x = (stage.width - w * scale) / 2;
  loupe.y = (stage.height - h * scale) / 2;
  applyLoupe(p);
}

function applyLoupe(p) {
  const f = $("loupe-frame");
  f.style.width = `${(p.width || 3) * loupe.scale}px`;
  f.style.height = `${(p.height || 2) * loupe.scale}px`;
  f.style.transform = `translate(${loupe.x}px, ${loupe.y}px)`;
}

function drawFaces(p) {
  const box = $("loupe-faces");
  box.textContent = "";
  if (!p.width || !p.height) return;
  const t = state.threshold;
  for (const f of p.faces || []) {
    const [x1, y1, x2, y2] = f.box;
    const d = el("div", "face");
    if (f.score === null || f.score === undefined) d.classList.add("skipped");
    else if (t && Math.abs(f.score - t) <= 0.25 * t) d.classList.add("near");
    else if (f.blurry) d.classList.add("blurry");
    d.style.left = `${(100 * x1) / p.width}%`;
    d.style.top = `${(100 * y1) / p.height}%`;
    d.style.width = `${(100 * (x2 - x1)) / p.width}%`;
    d.style.height = `${(100 * (y2 - y1)) / p.height}%`;
    const label = f.score === null || f.score === undefined ? "too small to judge"
      : `${f.score.toFixed(1)} / ${t !== null ? t.toFixed(1) : "?"}`;
    d.append(el("span", "", label));
    box.append(d);
  }
}

function toggleZoom(pointer) {
  const p = state.photos.get(state.focus);
  if (!p) return;
  const img = $("loupe-img");
  if (state.zoomed) { state.zoomed = false; $("loupe-stage").classList.remove("zoomed"); img.src = img.dataset.src; fitLoupe(p); return; }
  const stage = $("loupe-stage").getBoundingClientRect();
  const px = pointer ? pointer.x - stage.left : stage.width / 2;
  const py = pointer ? pointer.y - stage.top : stage.height / 2;
  // The point under the pointer, as a fraction of the photo, stays under it.
  const u = (px - loupe.x) / ((p.width || 1) * loupe.scale);
  const v = (py - loupe.y) / ((p.height || 1) * loupe.scale);
  const full = new Image();
  full.onload = () => {
    // 100 %: one pixel of the full-size image to one pixel of the screen.
    const ratio = window.devicePixelRatio || 1;
    loupe.scale = full.naturalWidth / ratio / (p.width || full.naturalWidth);
    loupe.x = px - u * (p.width || 1) * loupe.scale;
    loupe.y = py - v * (p.height || 1) * loupe.scale;
    img.src = full.src;
    state.zoomed = true;
    $("loupe-stage").classList.add("zoomed");
    applyLoupe(p);
  };
  full.src = `/api/photos/${p.id}/preview/full?v=${p.preview || "o"}`;
}

function prefetch(id) {
  const i = state.order.indexOf(id);
  for (const j of [i + 1, i - 1, i + 2]) {
    const q = state.photos.get(state.order[j]);
    if (q && q.preview) new Image().src = `/api/photos/${q.id}/preview/l?v=${q.preview}`;
  }
}

function setupLoupe() {
  const stage = $("loupe-stage");
  stage.addEventListener("pointermove", (e) => { lastPointer = { x: e.clientX, y: e.clientY }; });
  stage.addEventListener("click", (e) => { if (!state.zoomed) toggleZoom({ x: e.clientX, y: e.clientY }); });
  let drag = null;
  stage.addEventListener("pointerdown", (e) => { if (state.zoomed) { drag = { x: e.clientX, y: e.clientY, lx: loupe.x, ly: loupe.y }; stage.setPointerCapture(e.pointerId); } });
  stage.addEventListener("pointermove", (e) => {
    if (!drag) return;
    loupe.x = drag.lx + e.clientX - drag.x; loupe.y = drag.ly + e.clientY - drag.y;
    applyLoupe(state.photos.get(state.focus));
  });
  stage.addEventListener("pointerup", () => { drag = null; });
  window.addEventListener("resize", () => { if (state.loupe && !state.zoomed) fitLoupe(state.photos.get(state.focus)); if (state.compare) paintCompare(); });
}

// ---- burst compare ------------------------------------------------------------

async function openCompare() {
  const p = state.photos.get(state.focus);
  if (!p) return;
  if (!p.cluster_id || p.burst_size < 2) { toast("This photo is not part of a burst"); return; }
  const [frames] = await getJSON(`/api/bursts/${p.cluster_id}`);
  if (frames.length < 2) { toast("This burst has one frame left"); return; }
  const pinned = frames.findIndex((f) => f.id === p.id);
  state.compare = { frames, pinned: Math.max(0, pinned), offset: 0, focusPane: 0, view: { zoom: 1, cx: 0.5, cy: 0.5 } };
  closeLoupe();
  $("compare").hidden = false;
  paintCompare();
}

function closeCompare() {
  const c = state.compare;
  state.compare = null;
  $("compare").hidden = true;
  if (c) setFocus(c.frames[c.pinned].id);
}

function paneFrames() {
  // Pane 0 is the pinned reference; the others step through the rest of the burst.
  const c = state.compare;
  const others = c.frames.map((_, i) => i).filter((i) => i !== c.pinned);
  const n = Math.min(3, others.length);
  const out = [c.pinned];
  for (let k = 0; k < n; k++) out.push(others[(c.offset + k) % others.length]);
  return out;
}

function paneIndex(pane) { return paneFrames()[pane]; }

function paintCompare() {
  const c = state.compare;
  const idx = paneFrames();
  const panes = $("compare-panes");
  panes.textContent = "";
  panes.style.gridTemplateColumns = `repeat(${idx.length}, 1fr)`;
  $("compare-info").textContent = `${c.frames.length} frames · reference: ${c.frames[c.pinned].name}`;
  idx.forEach((fi, pane) => {
    const f = state.photos.get(c.frames[fi].id) || c.frames[fi];
    c.frames[fi] = f;
    const d = el("div", "pane");
    if (pane === 0) d.classList.add("pinned");
    if (pane === c.focusPane) d.classList.add("focused");
    const frame = el("div", "frame");
    const img = el("img");
    img.alt = f.name;
    img.draggable = false;
    if (f.preview) img.src = `/api/photos/${f.id}/preview/l?v=${f.preview}`;
    frame.append(img);
    d.append(frame);
    const cap = el("div", "cap");
    cap.append(el("span", "", f.name));
    if (f.state === "done") cap.append(f.rejected ? el("span", "badge reject", "rejected") : starsText(f.stars));
    if (f.is_pick) cap.append(el("span", "badge pick", "PICK"));
    if (pane === 0) cap.append(el("span", "muted", "reference"));
    d.append(cap);
    d.addEventListener("pointerdown", () => { c.focusPane = pane; for (const x of panes.children) x.classList.remove("focused"); d.classList.add("focused"); });
    panes.append(d);
    placeCompare(d, frame, f);
  });
  setupCompareGestures(panes);
}

function placeCompare(pane, frame, f) {
  // The same part of every frame, at the same zoom: view = {zoom over fit, centre as a fraction}.
  const v = state.compare.view;
  const r = pane.getBoundingClientRect();
  const w = f.width || 3, h = f.height || 2;
  const fit = Math.min(r.width / w, r.height / h);
  const s = fit * v.zoom;
  frame.style.width = `${w * s}px`;
  frame.style.height = `${h * s}px`;
  frame.style.transform = `translate(${r.width / 2 - v.cx * w * s}px, ${r.height / 2 - v.cy * h * s}px)`;
}

function replaceCompare() {
  const panes = $("compare-panes").children;
  const idx = paneFrames();
  [...panes].forEach((pane, k) => placeCompare(pane, pane.querySelector(".frame"), state.compare.frames[idx[k]]));
}

function setupCompareGestures(panes) {
  if (panes.dataset.wired) return;
  panes.dataset.wired = "1";
  panes.addEventListener("wheel", (e) => {
    if (!state.compare) return;
    e.preventDefault();
    const v = state.compare.view;
    v.zoom = Math.min(16, Math.max(1, v.zoom * (e.deltaY < 0 ? 1.2 : 1 / 1.2)));
    if (v.zoom === 1) { v.cx = 0.5; v.cy = 0.5; }
    replaceCompare();
  }, { passive: false });
  let drag = null;
  panes.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, cx: state.compare.view.cx, cy: state.compare.view.cy }; });
  window.addEventListener("pointermove", (e) => {
    if (!drag || !state.compare) return;
    const pane = $("compare-panes").firstElementChild;
    const frame = pane.querySelector(".frame").getBoundingClientRect();
    const v = state.compare.view;
    v.cx = Math.min(1, Math.max(0, drag.cx - (e.clientX - drag.x) / frame.width));
    v.cy = Math.min(1, Math.max(0, drag.cy - (e.clientY - drag.y) / frame.height));
    replaceCompare();
  });
  window.addEventListener("pointerup", () => { drag = null; });
}

function compareStep(delta) {
  const c = state.compare;
  const others = c.frames.length - 1;
  c.offset = (c.offset + delta + others) % others;
  paintCompare();
}

function pin() {
  const c = state.compare;
  c.pinned = paneIndex(c.focusPane);
  c.offset = 0; c.focusPane = 0;
  paintCompare();
}

// ---- header: status, filters, what-if ------------------------------------------

function paintStatus(s) {
  const run = $("st-run");
  run.textContent = s.running ? "running" : "service stopped";
  run.className = `pill ${s.running ? "running" : "stopped"}`;
  $("st-queue").textContent = String(s.queue_depth);
  $("st-rate").textContent = String(s.photos_per_second ?? 0);
  const err = $("st-error");
  if (s.last_error) { err.hidden = false; err.textContent = `last error ${s.last_error.at.slice(11)}: ${s.last_error.message}`; err.title = s.last_error.message; }
  else err.hidden = true;
}

const CHIPS = [
  { label: "All", view: {}, count: (c) => c.all },
  ...[5, 4, 3, 2, 1].map((n) => ({ stars: n, view: { stars: n }, count: (c) => c.stars[String(n)] })),
  { label: "Rejected", view: { filter: "rejected" }, count: (c) => c.rejected, sep: true },
  { label: "Picks", view: { filter: "picks" }, count: (c) => c.picks },
  { label: "Unreviewed", view: { filter: "unreviewed" }, count: (c) => c.unreviewed },
  { label: "Borderline", view: { filter: "borderline" }, count: (c) => c.borderline },
  { label: "Quarantined", view: { filter: "quarantined" }, count: (c) => c.quarantined },
];

function sameView(a, b) { return (a.stars || null) === (b.stars || null) && (a.filter || null) === (b.filter || null) && (a.reason || null) === (b.reason || null); }

function paintFilters(c) {
  const nav = $("filters");
  nav.textContent = "";
  for (const chip of CHIPS) {
    const b = el("button", "chip" + (chip.sep ? " sep" : ""));
    b.type = "button";
    b.dataset.view = JSON.stringify(chip.view);
    if (chip.stars) { const s = el("span", "stars", "★".repeat(chip.stars)); b.append(s); }
    else b.append(el("span", "", chip.label));
    b.append(el("span", "n", String(chip.count(c) ?? 0)));
    b.setAttribute("aria-pressed", String(sameView(chip.view, { stars: state.view.stars, filter: state.view.filter })));
    b.addEventListener("click", () => { state.view = chip.view; paintFilters(c); reload(); });
    nav.append(b);
  }
  const reasons = $("reasons");
  reasons.textContent = "";
  reasons.hidden = state.view.filter !== "quarantined" || !c.quarantine_reasons.length;
  for (const r of c.quarantine_reasons) {
    const b = el("button", "chip");
    b.type = "button";
    b.append(el("span", "", r.reason || "(no reason)"), el("span", "n", String(r.count)));
    b.setAttribute("aria-pressed", String(state.view.reason === r.reason));
    b.addEventListener("click", () => { state.view = { filter: "quarantined", reason: r.reason }; paintFilters(c); reload(); });
    reasons.append(b);
  }
}

let countsTimer = null;
function refreshCounts(soon) {
  if (countsTimer) return;
  countsTimer = setTimeout(async () => {
    countsTimer = null;
    try { const [c] = await getJSON("/api/counts"); paintFilters(c); } catch (e) { /* the next change tries again */ }
  }, soon ? 0 : 700);
}

let whatifTimer = null;
async function whatif() {
  const v = Number($("threshold").value);
  if (!(v > 0)) { $("whatif-result").textContent = ""; $("whatif-apply").hidden = true; return; }
  const [r] = await getJSON(`/api/whatif?threshold=${encodeURIComponent(v)}`);
  state.threshold = r.threshold_in_force;
  paintWhatif(r, v);
}

function paintWhatif(r, v) {
  const out = $("whatif-result");
  const apply = $("whatif-apply");
  if (v === r.threshold_in_force) {
    out.textContent = `in force · ${r.changes ? r.changes + " photos differ" : "all photos agree"}`;
    apply.hidden = r.changes === 0;
  } else {
    out.textContent = `at ${v.toFixed(1)}, ${r.changes} photo${r.changes === 1 ? "" : "s"} change stars`;
    apply.hidden = false;
  }
  out.dataset.changes = String(r.changes);
}

function setupWhatif() {
  const input = $("threshold");
  input.addEventListener("input", () => { clearTimeout(whatifTimer); whatifTimer = setTimeout(whatif, 250); });
  $("whatif").addEventListener("submit", (e) => { e.preventDefault(); whatif(); });
  $("whatif-apply").addEventListener("click", async () => {
    const v = Number(input.value);
    const r = await post("/api/rerate", { threshold: v });
    if (r && r.accepted) toast(`Re-rating every photo you have not decided at ${v.toFixed(1)}…`);
  });
}

// ---- live updates -------------------------------------------------------------

let source = null;
function startEvents() {
  if (source) source.close();
  source = new EventSource(`/api/events?since=${state.seq}`);
  source.addEventListener("photo", (e) => {
    const p = JSON.parse(e.data);
    state.seq = Math.max(state.seq, p.seq);
    upsert(p);
    refreshCounts(false);
  });
  source.addEventListener("status", (e) => paintStatus(JSON.parse(e.data)));
  source.addEventListener("notice", (e) => {
    const n = JSON.parse(e.data);
    if (n.photo) state.busy.delete(n.photo);
    if (!n.ok) toast(n.message, true);
    else if (n.action === "undo" || n.action === "rerate" || n.action === "moved") {
      toast(n.action === "rerate" ? `Re-rated: ${n.changed} photo(s) changed stars` : n.message);
      if (n.action === "rerate") { whatif(); }
    }
  });
  source.onerror = () => { $("st-run").textContent = "reconnecting…"; };
}

function toast(text, bad) {
  const t = el("div", "toast" + (bad ? " bad" : ""), text);
  $("toasts").append(t);
  setTimeout(() => t.remove(), bad ? 7000 : 3500);
}

// ---- start --------------------------------------------------------------------

async function main() {
  document.addEventListener("keydown", onKey);
  $("follow").addEventListener("click", () => setFollow(!state.follow));
  $("help-button").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
  $("help").addEventListener("click", (e) => { if (e.target === $("help")) $("help").hidden = true; });
  setupLoupe();
  setupWhatif();
  new IntersectionObserver((entries) => { if (entries.some((x) => x.isIntersecting)) loadPage(); })
    .observe($("more"));
  // The grid first: the server answers one request at a time per core, and the
  // header's figures (counts over the whole library) must not hold the photos back.
  await loadPage();
  startEvents();
  getJSON("/api/status").then(([s]) => {
    paintStatus(s);
    state.threshold = s.blur_threshold;
    $("threshold").value = String(s.blur_threshold);
    $("whatif-result").textContent = "in force";
    if (state.loupe) paintLoupe();
  });
  getJSON("/api/counts").then(([c]) => paintFilters(c));
}

main();
