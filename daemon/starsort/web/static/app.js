// starsort review page. No framework and no build step: the service ships this file as is.
// Everything shown from a photo (names, EXIF, reasons) goes in through textContent, never as HTML.
"use strict";

const PAGE = 200;
const FIRST_PAGE = 80;
const TILE_SIZES = [140, 188, 240, 320];
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
};

const state = {
  photos: new Map(),      // id -> photo, as /api/photos gives it
  tiles: new Map(),       // id -> tile element, kept so images are never fetched twice
  order: [],              // ids loaded, newest first
  visual: [],             // ids as the grid shows them (a burst's frames together); arrows walk this
  focus: null,            // the one photo every key acts on
  view: {},               // the filter: {stars} | {filter} | {filter: "quarantined", reason}
  generation: 0,          // bumped by a filter change, so a page of the old view is dropped
  cursor: null,           // id of the last photo loaded (paging)
  exhausted: false,
  loading: null,          // the page request in flight
  seq: 0,                 // the last change seen
  threshold: null,        // blur.threshold in force
  follow: false,
  busy: new Set(),        // photos with a change on its way
  loupe: false,
  zoomed: false,
  compare: null,          // {frames, pinned, offset, focusPane, view, full}
  counts: null,
};

// ---- talking to the service ---------------------------------------------------

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (r.status === 401) { signedOut(); throw new Error("signed out"); }
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return [await r.json(), r];
}

async function post(url, body) {
  let r;
  try {
    r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Starsort": "1" },
      body: JSON.stringify(body),
    });
  } catch (e) {
    toast("The service does not answer; nothing was changed", true);
    return null;
  }
  if (r.status === 401) { signedOut(); return null; }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) { toast(data.error || `refused (${r.status})`, true); return null; }
  return data;
}

function signedOut() {
  if (source) source.close();
  document.body.textContent = "";
  document.body.append(el("p", "empty", "Signed out. Open the page again with `starsort review`."));
}

function query(extra) {
  const q = new URLSearchParams();
  const v = state.view;
  if (v.stars) q.set("stars", v.stars);
  if (v.filter) q.set("filter", v.filter);
  if (v.reason !== undefined) q.set("reason", v.reason);
  if (v.person) q.set("person", v.person);
  for (const [k, val] of Object.entries(extra || {})) q.set(k, val);
  return q.toString();
}

// ---- the grid -----------------------------------------------------------------

function starsText(n) {
  const s = el("span", "stars");
  s.setAttribute("aria-label", `${n || 0} stars`);
  for (let i = 1; i <= 5; i++) s.append(el("span", i <= (n || 0) ? "on" : "off", "★"));
  return s;
}

function ext(path) {
  const name = (path || "").split("/").pop();
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toUpperCase() : "";
}

function nameEl(name) {
  // Frames of a burst differ at the end of their names (DSC3755, DSC3756): a long name
  // gives way in the middle, so its number and extension always show.
  const chars = Array.from(name || "");
  const cut = Math.max(0, chars.length - 8);
  const e = el("span", "name");
  e.append(el("span", "head", chars.slice(0, cut).join("")), el("span", "tail", chars.slice(cut).join("")));
  return e;
}

function inBurst(p) { return !!p.cluster_id && p.burst_size >= 2; }
function groupKey(p) { return inBurst(p) ? `c${p.cluster_id}` : `p${p.id}`; }

function tileFor(p) {
  let t = state.tiles.get(p.id);
  if (!t) {
    t = el("div", "tile");
    t.tabIndex = -1;
    t.dataset.id = p.id;
    t.append(el("div", "thumb"), el("div", "meta"));
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
  t.classList.add(p.decided_by === "photographer" ? "decided" : "machine");
  if (p.rejected) t.classList.add("rejected");
  if (p.state !== "done") t.classList.add(`state-${p.state}`);
  if (state.focus === p.id) t.classList.add("focused");
  if (inBurst(p) && p.is_pick) t.classList.add("pick");
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
    i.draggable = false;
    i.dataset.src = want;
    i.src = want;
    thumb.append(i);
  } else if (!want) {
    thumb.textContent = "";
    const why = p.state === "quarantined" ? `quarantined: ${p.error || ""}`
      : p.state === "queued" ? "being analysed…" : p.state === "done" ? "no preview yet" : p.state;
    thumb.append(el("div", "placeholder", why));
  }
  // Corner marks on the photo: the burst's pick, the file types, a change on its way.
  for (const b of thumb.querySelectorAll(".badges")) b.remove();
  const top = el("div", "badges top");
  if (inBurst(p) && p.is_pick) top.append(el("span", "badge pick", p.pick_by === "photographer" ? "PICK ✓" : "PICK"));
  if (p.rejected) top.append(el("span", "badge reject", "REJECTED"));
  if (state.busy.has(p.id)) top.append(el("span", "badge busy", "moving…"));
  const bottom = el("div", "badges bottom");
  // The file types only where they say something: a raw, or a RAW+JPEG pair.
  const kinds = [ext(p.current_path || p.original_path), p.pair_path ? ext(p.pair_path) : ""].filter(Boolean);
  if (kinds.length > 1 || (kinds.length && !/^JPE?G$/.test(kinds[0]))) bottom.append(el("span", "badge kind", kinds.join("+")));
  if (p.decided_by === "photographer") bottom.append(el("span", "badge mine", "your call"));
  thumb.append(top, bottom);
  const meta = t.querySelector(".meta");
  meta.textContent = "";
  meta.append(nameEl(p.name));
  if (p.state === "done") meta.append(p.rejected ? el("span", "stars rejected-mark", "✕") : starsText(p.stars));
  else meta.append(el("span", "state", p.state));
}

function render() {
  const grid = $("grid");
  const frag = document.createDocumentFragment();
  // A burst's loaded frames are shown together where its newest frame falls, even
  // when other photos were filed between its frames.
  const members = new Map();
  for (const id of state.order) {
    const p = state.photos.get(id);
    if (!inBurst(p)) continue;
    const key = groupKey(p);
    if (!members.has(key)) members.set(key, []);
    members.get(key).push(id);
  }
  const placed = new Set();
  const visual = [];
  for (const id of state.order) {
    if (placed.has(id)) continue;
    const p = state.photos.get(id);
    const key = groupKey(p);
    if (!members.has(key)) {
      const t = tileFor(p);
      t.dataset.group = key;
      frag.append(t);
      placed.add(id);
      visual.push(id);
      continue;
    }
    const group = el("div", "burst");
    group.dataset.cluster = p.cluster_id;
    const label = el("div", "burst-label");
    label.append(el("span", "", "Burst"), el("span", "n", `${p.burst_size} frames`));
    group.append(label);
    const row = el("div", "burst-row");
    for (const m of members.get(key)) {
      const t = tileFor(state.photos.get(m));
      t.dataset.group = key;
      row.append(t);
      placed.add(m);
      visual.push(m);
    }
    group.append(row);
    frag.append(group);
  }
  state.visual = visual;
  grid.textContent = "";
  grid.append(frag);
  if (!state.order.length) {
    const empty = el("div", "empty");
    if (state.loading) empty.append(el("p", "", "Loading…"));
    else if (state.view.stars || state.view.filter) empty.append(el("p", "", "No photo matches this filter."));
    else {
      empty.append(el("p", "big", "No photos yet."));
      empty.append(el("p", "", "Photos copied into an inbox appear here as soon as they are rated."));
    }
    grid.append(empty);
  }
  $("more").textContent = state.exhausted ? "" : state.loading ? "Loading…" : "Scroll for more";
  markFocus(false);
}

let renderQueued = false;
function renderSoon() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function loadPage() {
  // One request at a time; callers share the one in flight.
  if (state.exhausted) return Promise.resolve();
  if (!state.loading) {
    const gen = state.generation;
    state.loading = fetchPage(gen).finally(() => { if (gen === state.generation) state.loading = null; });
  }
  return state.loading;
}

async function fetchPage(gen) {
  // The first page is what fills a screen, so the grid answers keys sooner; the rest follow in pages of PAGE.
  const limit = state.cursor === null ? FIRST_PAGE : PAGE;
  const extra = { limit };
  if (state.cursor !== null) extra.after = state.cursor;
  const [rows, r] = await getJSON(`/api/photos?${query(extra)}`);
  if (gen !== state.generation) return;           // the filter changed meanwhile
  if (state.cursor === null) state.seq = Math.max(state.seq, Number(r.headers.get("x-starsort-seq") || 0));
  for (const p of rows) {
    if (!state.photos.has(p.id)) state.order.push(p.id);
    state.photos.set(p.id, p);
  }
  state.order.sort((a, b) => b - a);
  if (rows.length) state.cursor = rows[rows.length - 1].id;
  if (rows.length < limit) state.exhausted = true;
  state.loading = null;
  render();
  if (state.focus === null && state.visual.length) setFocus(state.visual[0], false);
  // A screen taller than one page of tiles: keep loading until it is full.
  requestAnimationFrame(() => { if (!state.exhausted && inView($("more"))) loadPage(); });
}

async function reload() {
  state.generation++;
  state.photos.clear(); state.order = []; state.visual = []; state.cursor = null; state.exhausted = false;
  state.focus = null; state.loading = null;
  const page = loadPage();
  render();
  await page;
}

function matches(p) {
  const v = state.view;
  if (p.state === "undone") return false;
  // Who is in a new photo is decided after it is filed: a person's view shows the
  // photos it was loaded with (and their changes), and a reload brings the new ones.
  if (v.person) return state.photos.has(p.id);
  if (v.stars) return p.state === "done" && !p.rejected && p.stars === v.stars;
  switch (v.filter) {
    case "rejected": return p.rejected;
    case "picks": return p.is_pick && p.burst_size >= 2;
    case "unreviewed": return p.state === "done" && p.decided_by === "machine";
    case "borderline": return p.state === "done" && p.verdict === "borderline";
    case "quarantined": return p.state === "quarantined" && (v.reason === undefined || p.error === v.reason);
  }
  return true;
}

function spreadBurst(p) {
  // A burst's size and who chose its pick belong to the burst, not to one frame: when a frame
  // joins, only its own row is sent, so the frames already shown learn of it from that row.
  if (!p.cluster_id) return;
  for (const q of state.photos.values()) {
    if (q.id === p.id || q.cluster_id !== p.cluster_id) continue;
    if (q.burst_size === p.burst_size && q.pick_by === p.pick_by) continue;
    q.burst_size = p.burst_size;
    q.pick_by = p.pick_by;
    const t = state.tiles.get(q.id);
    if (t) { paintTile(t, q); if (t.dataset.group !== groupKey(q)) renderSoon(); }
  }
}

function upsert(p) {
  const known = state.photos.has(p.id);
  if (!known && p.state === "undone") return;
  state.photos.set(p.id, p);
  state.busy.delete(p.id);
  spreadBurst(p);
  if (known) {
    const t = state.tiles.get(p.id);
    if (t) {
      paintTile(t, p);
      if (t.dataset.group !== groupKey(p)) renderSoon();       // joined or left a burst
    }
    if (p.state === "undone") { state.order = state.order.filter((id) => id !== p.id); renderSoon(); }
    if (state.loupe && state.focus === p.id) paintLoupe();
    if (state.compare && state.compare.frames.some((f) => f.id === p.id)) paintCompare();
    return;
  }
  if (!matches(p)) { state.photos.delete(p.id); return; }
  // Only photos within the loaded range: older ones arrive with their page.
  if (!state.exhausted && state.cursor !== null && p.id < state.cursor) { state.photos.delete(p.id); return; }
  const at = state.order.findIndex((id) => id < p.id);
  if (at < 0) state.order.push(p.id); else state.order.splice(at, 0, p.id);
  renderSoon();
  requestAnimationFrame(() => { const t = state.tiles.get(p.id); if (t) t.classList.add("fresh"); });
  if (state.follow && p.id === state.order[0]) requestAnimationFrame(() => { setFocus(p.id); window.scrollTo({ top: 0 }); });
}

// ---- focus and keys -----------------------------------------------------------

function markFocus(scroll = true) {
  for (const t of document.querySelectorAll(".tile.focused")) if (Number(t.dataset.id) !== state.focus) t.classList.remove("focused");
  const t = state.tiles.get(state.focus);
  if (t && t.isConnected) {
    t.classList.add("focused");
    if (scroll) t.scrollIntoView({ block: "nearest" });
  }
}

function setFocus(id, scroll = true) {
  if (id === null || id === undefined || !state.photos.has(id)) return;
  state.focus = id;
  markFocus(scroll);
  if (state.loupe) paintLoupe();
  if (state.visual.indexOf(id) > state.visual.length - 20) loadPage();
}

function step(delta) {
  const i = state.visual.indexOf(state.focus);
  const j = Math.min(state.visual.length - 1, Math.max(0, (i < 0 ? 0 : i) + delta));
  setFocus(state.visual[j]);
}

function stepBurst(delta) {
  // The first photo of the previous or next group (a burst, or a photo on its own).
  const v = state.visual;
  const groupOf = (id) => groupKey(state.photos.get(id));
  let i = v.indexOf(state.focus);
  if (i < 0) return;
  const here = groupOf(v[i]);
  if (delta > 0) {
    while (i < v.length && groupOf(v[i]) === here) i++;
    if (i < v.length) setFocus(v[i]);
  } else {
    while (i > 0 && groupOf(v[i - 1]) === here) i--;
    if (i === 0) { setFocus(v[0]); return; }
    const prev = groupOf(v[i - 1]);
    i--;
    while (i > 0 && groupOf(v[i - 1]) === prev) i--;
    setFocus(v[i]);
  }
}

function focusedPhoto() {
  if (state.compare) {
    const f = state.compare.frames[paneIndex(state.compare.focusPane)];
    return f && (state.photos.get(f.id) || f);
  }
  return state.photos.get(state.focus);
}

function headerBottom() {
  return $("chrome").getBoundingClientRect().bottom;
}

function inView(e) {
  if (!e || !e.isConnected) return false;
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.bottom > headerBottom() + 16 && r.top < window.innerHeight - 16;
}

function focusShown() {
  // A key acts only on the photo the photographer can see has the focus ring.
  if (state.compare || state.loupe) return true;
  return inView(state.tiles.get(state.focus));
}

function reveal() {
  const t = state.tiles.get(state.focus);
  if (!t || !t.isConnected) { toast("No photo has the focus: click one first"); return; }
  t.scrollIntoView({ block: "center" });
  t.classList.remove("flash");
  void t.offsetWidth;
  t.classList.add("flash");
  toast("The focused photo was out of sight, so nothing changed. It is shown now: press the key again.");
}

async function change(body, advance) {
  const p = focusedPhoto();
  if (!p) return;
  if (p.state !== "done") { toast(`${p.name} is ${p.state}: it can be rated once it is filed`, true); return; }
  if (body.pick && !inBurst(p)) { toast(`${p.name} is in no burst: there is no pick to choose`); return; }
  state.busy.add(p.id);
  const t = state.tiles.get(p.id);
  if (t) paintTile(t, p);
  if (advance && !state.compare) step(1);
  const r = await post(`/api/photos/${p.id}`, body);
  if (!r || !r.accepted) { state.busy.delete(p.id); if (t) paintTile(t, state.photos.get(p.id) || p); }
}

function overlayOpen() { return !$("help").hidden; }

function onKey(e) {
  const tag = e.target && e.target.tagName;
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  const k = e.key;
  if (k === "Escape") {
    if (overlayOpen()) { $("help").hidden = true; return; }
    if (state.compare) { closeCompare(); return; }
    if (state.loupe) { closeLoupe(); return; }
    return;
  }
  if (k === "?") { e.preventDefault(); $("help").hidden = !$("help").hidden; return; }
  // The key list covers the photos: no key may act on one behind it.
  if (overlayOpen()) return;
  if ((e.ctrlKey || e.metaKey) && !e.altKey && k.toLowerCase() === "z") { e.preventDefault(); if (!e.repeat) undo(); return; }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const digit = e.code && e.code.startsWith("Digit") ? e.code.slice(5) : (/^[0-9]$/.test(k) ? k : null);
  const acting = (digit !== null && digit <= "5") || "xXpPuU".includes(k) && k.length === 1;
  if (acting) {
    e.preventDefault();
    if (e.repeat) return;                 // a held key rates once
    if (k === "P" && state.compare) { pin(); return; }
    if (!focusShown()) { reveal(); return; }
    if (digit !== null && digit >= "1" && digit <= "5") change({ stars: Number(digit) }, e.shiftKey);
    else if (digit === "0" || k === "u" || k === "U") change({ machine: true }, false);
    else if (k === "x" || k === "X") change({ reject: true }, e.shiftKey);
    else change({ pick: true }, false);
    return;
  }
  switch (k) {
    case "Tab":
      // In compare, the keys act on the frame with the white border: Tab passes it on.
      if (state.compare) { e.preventDefault(); focusPane(e.shiftKey ? -1 : 1); }
      return;
    case "ArrowRight": e.preventDefault(); state.compare ? compareStep(1) : step(1); return;
    case "ArrowLeft": e.preventDefault(); state.compare ? compareStep(-1) : step(-1); return;
    case "ArrowDown": if (!state.loupe && !state.compare) { e.preventDefault(); stepBurst(1); } return;
    case "ArrowUp": if (!state.loupe && !state.compare) { e.preventDefault(); stepBurst(-1); } return;
    case "Home": if (!state.compare) { e.preventDefault(); setFocus(state.visual[0]); } return;
    case "End": if (!state.compare) { e.preventDefault(); setFocus(state.visual[state.visual.length - 1]); } return;
    case "Enter": case " ": case "e": case "E":
      e.preventDefault();
      if (state.compare) return;
      if (state.loupe && k !== "e" && k !== "E") closeLoupe(); else if (!state.loupe) openLoupe();
      return;
    case "g": case "G": if (state.compare) closeCompare(); if (state.loupe) closeLoupe(); return;
    case "z": case "Z": if (state.loupe) toggleZoom(lastPointer); return;
    case "c": case "C": state.compare ? closeCompare() : openCompare(); return;
    case "f": case "F": setFollow(!state.follow); return;
    case "=": case "+": resizeTiles(1); return;
    case "-": case "_": resizeTiles(-1); return;
  }
}

async function undo() {
  const r = await post("/api/undo", {});
  if (r && r.accepted) toast("Undoing the last change…");
}

function setFollow(on) {
  state.follow = on;
  $("follow").setAttribute("aria-pressed", String(on));
  if (on && state.visual.length) { setFocus(state.visual[0]); window.scrollTo({ top: 0 }); }
}

function resizeTiles(delta) {
  const now = Number(localStorage.getItem("starsort.tile") || 188);
  let i = TILE_SIZES.indexOf(now);
  if (i < 0) i = 1;
  i = Math.max(0, Math.min(TILE_SIZES.length - 1, i + delta));
  localStorage.setItem("starsort.tile", String(TILE_SIZES[i]));
  applyTileSize();
  markFocus();
}

function applyTileSize() {
  const px = Number(localStorage.getItem("starsort.tile") || 188);
  document.documentElement.style.setProperty("--tile", `${px}px`);
}

// ---- loupe --------------------------------------------------------------------

let lastPointer = null;
const loupe = { scale: 1, x: 0, y: 0 };

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
  $("loupe-title").textContent = p.name;
  const bits = [p.camera_model, p.captured_at ? p.captured_at.replace("T", " ") : null,
    p.width && p.height ? `${p.width} × ${p.height}` : null].filter(Boolean);
  $("loupe-meta").textContent = bits.join(" · ");
  const i = state.visual.indexOf(p.id);
  $("loupe-pos").textContent = i >= 0 ? `${i + 1} / ${state.visual.length}` : "";
  const s = $("loupe-stars");
  s.textContent = "";
  if (p.state === "done") s.append(p.rejected ? el("span", "badge reject", "REJECTED") : starsText(p.stars));
  if (inBurst(p) && p.is_pick) s.append(el("span", "badge pick", "PICK"));
  if (inBurst(p)) s.append(el("span", "badge kind", `burst of ${p.burst_size}`));
  s.append(el("span", `badge ${p.decided_by === "photographer" ? "mine" : "kind"}`,
    p.decided_by === "photographer" ? "your call" : "machine's call"));
  const why = $("loupe-why");
  why.textContent = "";
  why.className = `why ${p.verdict || ""}`;
  why.append(el("span", "verdict", p.verdict || p.state), el("span", "", p.why || p.error || ""));
  const img = $("loupe-img");
  const src = p.preview ? `/api/photos/${p.id}/preview/l?v=${p.preview}` : "";
  setZoomed(false);
  if (img.dataset.src !== src) { img.dataset.src = src; if (src) img.src = src; else img.removeAttribute("src"); }
  drawFaces(p);
  fitLoupe(p);
  prefetch(p.id);
}

function setZoomed(on) {
  state.zoomed = on;
  $("loupe-stage").classList.toggle("zoomed", on);
  $("loupe-zoom").textContent = on ? "100%" : "Fit";
}

function fitLoupe(p) {
  const stage = $("loupe-stage").getBoundingClientRect();
  const w = p.width || 3, h = p.height || 2;
  const pad = 24;
  const scale = Math.min((stage.width - pad) / w, (stage.height - pad) / h);
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
    // A face too small to judge, or far behind the subject, is drawn but does not count.
    const judged = f.score !== null && f.score !== undefined && !f.skipped;
    if (!judged) d.classList.add("skipped");
    else if (t && Math.abs(f.score - t) <= 0.25 * t) d.classList.add("near");
    else if (f.blurry) d.classList.add("blurry");
    d.style.left = `${(100 * x1) / p.width}%`;
    d.style.top = `${(100 * y1) / p.height}%`;
    d.style.width = `${(100 * (x2 - x1)) / p.width}%`;
    d.style.height = `${(100 * (y2 - y1)) / p.height}%`;
    // A face at the top edge keeps its label inside the box, where it is not cut off.
    if (y1 / p.height < 0.06) d.classList.add("label-inside");
    const label = !judged ? (f.skipped === "background" ? "in the background" : "too small to judge")
      : t === null ? f.score.toFixed(1)
      : `${f.score.toFixed(1)} ${f.score >= t ? "≥" : "<"} ${Number(t.toFixed(1))}`;
    d.append(el("span", "", label));
    box.append(d);
  }
}

function toggleZoom(pointer) {
  const p = state.photos.get(state.focus);
  if (!p) return;
  const img = $("loupe-img");
  if (state.zoomed) { setZoomed(false); img.src = img.dataset.src; fitLoupe(p); return; }
  const stage = $("loupe-stage").getBoundingClientRect();
  const px = pointer ? pointer.x - stage.left : stage.width / 2;
  const py = pointer ? pointer.y - stage.top : stage.height / 2;
  // The point under the pointer, as a fraction of the photo, stays under it.
  const u = Math.min(1, Math.max(0, (px - loupe.x) / ((p.width || 1) * loupe.scale)));
  const v = Math.min(1, Math.max(0, (py - loupe.y) / ((p.height || 1) * loupe.scale)));
  const full = new Image();
  const id = p.id;
  full.onload = () => {
    if (state.focus !== id || !state.loupe) return;
    // 100 %: one pixel of the full-size image to one pixel of the screen.
    const ratio = window.devicePixelRatio || 1;
    loupe.scale = full.naturalWidth / ratio / (p.width || full.naturalWidth);
    loupe.x = px - u * (p.width || 1) * loupe.scale;
    loupe.y = py - v * (p.height || 1) * loupe.scale;
    img.src = full.src;
    setZoomed(true);
    applyLoupe(p);
  };
  full.src = `/api/photos/${p.id}/preview/full?v=${p.preview || "o"}`;
}

function prefetch(id) {
  const i = state.visual.indexOf(id);
  for (const j of [i + 1, i - 1, i + 2]) {
    const q = state.photos.get(state.visual[j]);
    if (q && q.preview) new Image().src = `/api/photos/${q.id}/preview/l?v=${q.preview}`;
  }
}

function setupLoupe() {
  const stage = $("loupe-stage");
  let drag = null;
  stage.addEventListener("pointermove", (e) => {
    lastPointer = { x: e.clientX, y: e.clientY };
    if (!drag) return;
    if (Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) > 3) drag.moved = true;
    if (!drag.zoomed) return;
    loupe.x = drag.lx + e.clientX - drag.x; loupe.y = drag.ly + e.clientY - drag.y;
    applyLoupe(state.photos.get(state.focus));
  });
  stage.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, lx: loupe.x, ly: loupe.y, moved: false, zoomed: state.zoomed };
    if (state.zoomed) stage.setPointerCapture(e.pointerId);
  });
  stage.addEventListener("pointerup", (e) => {
    // A click (not a drag) toggles between fit and 100 % at the pointer.
    const d = drag;
    drag = null;
    if (d && !d.moved) toggleZoom({ x: e.clientX, y: e.clientY });
  });
  window.addEventListener("resize", () => {
    if (state.loupe && !state.zoomed) fitLoupe(state.photos.get(state.focus));
    if (state.compare) placeAll();
  });
}

// ---- burst compare ------------------------------------------------------------

async function openCompare() {
  const p = state.photos.get(state.focus);
  if (!p) return;
  if (!inBurst(p)) { toast("This photo is not part of a burst"); return; }
  let frames;
  try { [frames] = await getJSON(`/api/bursts/${p.cluster_id}`); } catch (e) { toast("Could not load the burst", true); return; }
  if (frames.length < 2) { toast("This burst has one frame left"); return; }
  // The reference is the burst's pick (what the frames are judged against); the focused
  // frame is the first one beside it.
  let pinned = frames.findIndex((f) => f.is_pick);
  if (pinned < 0) pinned = Math.max(0, frames.findIndex((f) => f.id === p.id));
  const others = frames.map((_, i) => i).filter((i) => i !== pinned);
  const at = others.indexOf(frames.findIndex((f) => f.id === p.id));
  state.compare = { frames, pinned, offset: Math.max(0, at), focusPane: 1, view: { zoom: 1, cx: 0.5, cy: 0.5 }, full: new Set() };
  if (state.loupe) { state.loupe = false; $("loupe").hidden = true; }
  $("compare").hidden = false;
  paintCompare();
}

function closeCompare() {
  const c = state.compare;
  if (!c) return;
  const f = c.frames[paneIndex(c.focusPane)];
  state.compare = null;
  $("compare").hidden = true;
  if (f && state.photos.has(f.id)) setFocus(f.id); else markFocus();
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

function previewURL(f, full) {
  return `/api/photos/${f.id}/preview/${full ? "full" : "l"}?v=${f.preview || "o"}`;
}

function paintCompare() {
  const c = state.compare;
  const idx = paneFrames();
  const panes = $("compare-panes");
  panes.textContent = "";
  panes.dataset.n = String(idx.length);
  const pick = c.frames.find((f) => (state.photos.get(f.id) || f).is_pick);
  $("compare-info").textContent = `${c.frames.length} frames${pick ? ` · pick: ${(state.photos.get(pick.id) || pick).name}` : ""}`;
  idx.forEach((fi, pane) => {
    const f = state.photos.get(c.frames[fi].id) || c.frames[fi];
    c.frames[fi] = f;
    const d = el("div", "pane");
    d.dataset.id = f.id;
    if (pane === 0) d.classList.add("pinned");
    if (pane === c.focusPane) d.classList.add("focused");
    const frame = el("div", "frame");
    const img = el("img");
    img.alt = f.name;
    img.draggable = false;
    if (f.preview || f.kind === "jpeg") img.src = previewURL(f, c.full.has(f.id));
    frame.append(img);
    d.append(frame);
    const head = el("div", "cap top");
    head.append(el("span", "badge " + (pane === 0 ? "ref" : "kind"), pane === 0 ? "REFERENCE" : `frame ${fi + 1} of ${c.frames.length}`));
    if (f.is_pick) head.append(el("span", "badge pick", "PICK"));
    if (f.decided_by === "photographer") head.append(el("span", "badge mine", "your call"));
    const cap = el("div", "cap");
    cap.append(el("span", "name", f.name));
    if (f.state === "done") cap.append(f.rejected ? el("span", "badge reject", "REJECTED") : starsText(f.stars));
    const score = f.rated_on === "frame" ? f.frame_score : Math.min(...(f.faces || []).filter((x) => !x.skipped).map((x) => x.score ?? Infinity));
    if (Number.isFinite(score)) cap.append(el("span", "muted", `${f.rated_on === "frame" ? "frame" : "weakest face"} ${score.toFixed(1)}`));
    d.append(head, cap);
    d.addEventListener("pointerdown", () => {
      c.focusPane = pane;
      for (const x of panes.children) x.classList.toggle("focused", x === d);
    });
    panes.append(d);
  });
  placeAll();
  setupCompareGestures(panes);
}

function placeCompare(pane, frame, f) {
  // The same part of every frame, at the same zoom: view = {zoom over fit, centre as a fraction}.
  const c = state.compare;
  const v = c.view;
  const r = pane.getBoundingClientRect();
  const w = f.width || 3, h = f.height || 2;
  const fit = Math.min(r.width / w, r.height / h);
  const s = fit * v.zoom;
  frame.style.width = `${w * s}px`;
  frame.style.height = `${h * s}px`;
  frame.style.transform = `translate(${r.width / 2 - v.cx * w * s}px, ${r.height / 2 - v.cy * h * s}px)`;
  // Zoomed past what the large preview holds: the full-size image, once per frame.
  const img = frame.querySelector("img");
  const need = w * s * (window.devicePixelRatio || 1);
  if (img && img.naturalWidth && need > img.naturalWidth * 1.05 && !c.full.has(f.id)) {
    c.full.add(f.id);
    img.src = previewURL(f, true);
  }
}

function placeAll() {
  if (!state.compare) return;
  const panes = $("compare-panes").children;
  const idx = paneFrames();
  [...panes].forEach((pane, k) => {
    const f = state.compare.frames[idx[k]];
    const frame = pane.querySelector(".frame");
    placeCompare(pane, frame, f);
    const img = frame.querySelector("img");
    if (img && !img.complete) img.addEventListener("load", () => { if (state.compare) placeCompare(pane, frame, f); }, { once: true });
  });
}

function setupCompareGestures(panes) {
  if (panes.dataset.wired) return;
  panes.dataset.wired = "1";
  panes.addEventListener("wheel", (e) => {
    if (!state.compare) return;
    e.preventDefault();
    const c = state.compare;
    const v = c.view;
    const pane = e.target.closest(".pane") || panes.firstElementChild;
    const f = c.frames.find((x) => String(x.id) === pane.dataset.id) || c.frames[c.pinned];
    const r = pane.getBoundingClientRect();
    const w = f.width || 3, h = f.height || 2;
    const fit = Math.min(r.width / w, r.height / h);
    // The point under the pointer stays under it, in every pane.
    const mx = e.clientX - r.left - r.width / 2, my = e.clientY - r.top - r.height / 2;
    const u = v.cx + mx / (w * fit * v.zoom), q = v.cy + my / (h * fit * v.zoom);
    v.zoom = Math.min(32, Math.max(1, v.zoom * (e.deltaY < 0 ? 1.25 : 1 / 1.25)));
    if (v.zoom === 1) { v.cx = 0.5; v.cy = 0.5; }
    else {
      v.cx = Math.min(1, Math.max(0, u - mx / (w * fit * v.zoom)));
      v.cy = Math.min(1, Math.max(0, q - my / (h * fit * v.zoom)));
    }
    placeAll();
  }, { passive: false });
  let drag = null;
  panes.addEventListener("pointerdown", (e) => {
    if (!state.compare) return;
    const frame = (e.target.closest(".pane") || panes.firstElementChild).querySelector(".frame").getBoundingClientRect();
    drag = { x: e.clientX, y: e.clientY, cx: state.compare.view.cx, cy: state.compare.view.cy, w: frame.width, h: frame.height };
  });
  window.addEventListener("pointermove", (e) => {
    if (!drag || !state.compare) return;
    const v = state.compare.view;
    if (v.zoom === 1) return;
    v.cx = Math.min(1, Math.max(0, drag.cx - (e.clientX - drag.x) / drag.w));
    v.cy = Math.min(1, Math.max(0, drag.cy - (e.clientY - drag.y) / drag.h));
    placeAll();
  });
  window.addEventListener("pointerup", () => { drag = null; });
}

function focusPane(delta) {
  const c = state.compare;
  const n = paneFrames().length;
  c.focusPane = (c.focusPane + delta + n) % n;
  [...$("compare-panes").children].forEach((x, i) => x.classList.toggle("focused", i === c.focusPane));
}

function compareStep(delta) {
  const c = state.compare;
  const others = c.frames.length - 1;
  c.offset = (c.offset + delta + others) % others;
  paintCompare();
}

function pin() {
  const c = state.compare;
  if (c.focusPane === 0) return;
  const chosen = paneIndex(c.focusPane);
  const old = c.pinned;
  c.pinned = chosen;
  // The old reference takes the pane the new one left, so stepping goes on from there.
  const others = c.frames.map((_, i) => i).filter((i) => i !== c.pinned);
  const n = others.length;
  c.offset = (((others.indexOf(old) - (c.focusPane - 1)) % n) + n) % n;
  paintCompare();
  toast(`${c.frames[chosen].name} is the reference now`);
}

// ---- header: status, filters, what-if ------------------------------------------

function paintStatus(s) {
  state.status = s;
  const run = $("st-run");
  const word = s.state || (s.running ? "running" : "down");
  run.textContent = !s.running ? "service stopped" : s.paused ? "intake paused" : (s.problems || []).length ? "problem" : "running";
  run.className = `pill ${!s.running ? "stopped" : s.paused ? "paused" : (s.problems || []).length ? "problem" : "running"}`;
  run.title = s.line || word;
  const pause = $("pause");
  pause.hidden = !s.running;
  pause.textContent = s.paused ? "Resume intake" : "Pause intake";
  pause.setAttribute("aria-pressed", String(!!s.paused));
  $("st-queue").textContent = String(s.queue_depth);
  $("st-rate").textContent = (s.photos_per_second ?? 0).toFixed(2);
  const err = $("st-error");
  if ((s.problems || []).length) {
    err.hidden = false;
    err.textContent = "";
    err.append(el("b", "", "problem"), el("span", "", s.problems.join(" · ")));
    err.title = s.problems.join("\n");
  } else if (s.last_error) {
    err.hidden = false;
    err.textContent = "";
    // Today's errors by their time alone; older ones with their date.
    const [day, time] = s.last_error.at.split("T");
    const today = new Date();
    const todayText = `${today.getFullYear()}-${String(today.getMonth() + 1).padStart(2, "0")}-${String(today.getDate()).padStart(2, "0")}`;
    err.append(el("b", "", "last error"), el("span", "when", day === todayText ? time : `${day} ${time}`), el("span", "", s.last_error.message));
    err.title = s.last_error.message;
  } else err.hidden = true;
  const warn = $("st-warn");
  const warnings = s.warnings || [];
  warn.hidden = !warnings.length;
  warn.textContent = warnings.length ? `⚠ ${warnings.length === 1 ? warnings[0] : warnings.length + " warnings"}` : "";
  warn.title = warnings.join("\n");
}

const CHIPS = [
  { label: "All", view: {}, count: (c) => c.all },
  ...[5, 4, 3, 2, 1].map((n) => ({ stars: n, view: { stars: n }, count: (c) => c.stars[String(n)] })),
  { label: "Rejected", view: { filter: "rejected" }, count: (c) => c.rejected, sep: true },
  { label: "Picks", view: { filter: "picks" }, count: (c) => c.picks },
  { label: "Unreviewed", view: { filter: "unreviewed" }, count: (c) => c.unreviewed },
  { label: "Borderline", view: { filter: "borderline" }, count: (c) => c.borderline, cls: "borderline" },
  { label: "Quarantined", view: { filter: "quarantined" }, count: (c) => c.quarantined, sep: true, cls: "quarantined" },
];

function sameView(a, b) { return (a.stars || null) === (b.stars || null) && (a.filter || null) === (b.filter || null); }

function paintFilters(c) {
  state.counts = c;
  const nav = $("filters");
  nav.textContent = "";
  for (const chip of CHIPS) {
    const b = el("button", "chip" + (chip.sep ? " sep" : "") + (chip.cls ? " " + chip.cls : ""));
    b.type = "button";
    b.dataset.view = JSON.stringify(chip.view);
    if (chip.stars) { b.append(starsText(chip.stars)); b.title = `${chip.stars} star${chip.stars > 1 ? "s" : ""}`; }
    else b.append(el("span", "", chip.label));
    const n = chip.count(c) ?? 0;
    b.append(el("span", "n", String(n)));
    if (!n) b.classList.add("zero");
    b.setAttribute("aria-pressed", String(sameView(chip.view, state.view)));
    b.addEventListener("click", () => { state.view = chip.view; paintFilters(state.counts); reload(); b.blur(); });
    nav.append(b);
  }
  if (c.queued) nav.append(el("span", "chip-note", `${c.queued} being analysed`));
  const reasons = $("reasons");
  reasons.textContent = "";
  reasons.hidden = state.view.filter !== "quarantined" || !c.quarantine_reasons.length;
  for (const r of c.quarantine_reasons) {
    const b = el("button", "chip");
    b.type = "button";
    b.append(el("span", "", r.reason || "(no reason)"), el("span", "n", String(r.count)));
    b.setAttribute("aria-pressed", String(state.view.reason === r.reason));
    b.addEventListener("click", () => {
      state.view = state.view.reason === r.reason ? { filter: "quarantined" } : { filter: "quarantined", reason: r.reason };
      paintFilters(state.counts); reload(); b.blur();
    });
    reasons.append(b);
  }
}

let countsTimer = null;
function refreshCounts(soon) {
  if (countsTimer) return;
  countsTimer = setTimeout(async () => {
    countsTimer = null;
    try { const [c] = await getJSON("/api/counts"); paintFilters(c); } catch (e) { /* the next change tries again */ }
  }, soon ? 0 : 300);
}

let whatifTimer = null;
let whatifAsked = 0;
async function whatif() {
  const v = Number($("threshold").value);
  const out = $("whatif-result");
  const apply = $("whatif-apply");
  const asked = ++whatifAsked;
  if (!(v > 0)) { out.textContent = ""; delete out.dataset.changes; apply.hidden = true; return; }
  let r;
  try { [r] = await getJSON(`/api/whatif?threshold=${encodeURIComponent(v)}`); } catch (e) { return; }
  if (asked !== whatifAsked) return;          // a newer value was typed meanwhile
  state.threshold = r.threshold_in_force;
  out.dataset.threshold = String(r.threshold);
  out.dataset.changes = String(r.changes);
  const plural = r.changes === 1 ? "photo changes" : "photos change";
  if (v === r.threshold_in_force) {
    out.textContent = r.changes ? `in force · ${r.changes} ${plural} stars if re-rated` : "in force";
    out.className = "muted";
  } else {
    out.textContent = `at ${v.toFixed(1)}, ${r.changes} ${plural} stars`;
    out.className = r.changes ? "changes" : "muted";
  }
  out.title = Object.entries(r.moves || {}).map(([k, n]) => `${k.replace("->", "★ → ")}★: ${n}`).join("\n");
  apply.hidden = r.changes === 0 && v === r.threshold_in_force;
}

function setupWhatif() {
  const input = $("threshold");
  input.addEventListener("input", () => { clearTimeout(whatifTimer); whatifTimer = setTimeout(whatif, 250); });
  $("whatif").addEventListener("submit", (e) => { e.preventDefault(); whatif(); });
  $("whatif-apply").addEventListener("click", async () => {
    const v = Number(input.value);
    if (!(v > 0)) return;
    const r = await post("/api/rerate", { threshold: v });
    if (r && r.accepted) toast(`Re-rating every photo you have not decided, at ${v.toFixed(1)}…`);
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
    if (n.photo) {
      state.busy.delete(n.photo);
      const t = state.tiles.get(n.photo), p = state.photos.get(n.photo);
      if (t && p) paintTile(t, p);
    }
    if (!n.ok) { toast(n.message, true); return; }
    if (n.action === "undo" || n.action === "rerate" || n.action === "moved") {
      const p = n.photo && state.photos.get(n.photo);
      toast(n.action === "rerate" ? `Re-rated: ${n.changed} photo(s) changed stars`
        : p ? `${p.name}: ${n.message}` : n.message);
      if (n.action === "undo" && p && !state.compare) setFocus(n.photo);
      if (n.action === "rerate") { whatif(); refreshCounts(true); }
    }
  });
  source.onopen = () => { if ($("st-run").textContent === "reconnecting…") $("st-run").textContent = "running"; };
  source.onerror = () => { $("st-run").textContent = "reconnecting…"; $("st-run").className = "pill stopped"; };
}

function toast(text, bad) {
  const t = el("div", "toast" + (bad ? " bad" : ""), text);
  $("toasts").append(t);
  while ($("toasts").children.length > 4) $("toasts").firstElementChild.remove();
  setTimeout(() => t.remove(), bad ? 7000 : 3500);
}

// ---- start --------------------------------------------------------------------

function trackChrome() {
  // The sticky header's height, however it wraps, so a photo scrolled into view is never under it.
  const set = () => document.documentElement.style.setProperty("--chrome", `${Math.ceil($("chrome").getBoundingClientRect().height)}px`);
  new ResizeObserver(set).observe($("chrome"));
  set();
}

async function main() {
  applyTileSize();
  trackChrome();
  document.addEventListener("keydown", onKey);
  $("follow").addEventListener("click", () => setFollow(!state.follow));
  $("people-button").addEventListener("click", () => showPeople($("people").hidden));
  $("people-filter").addEventListener("click", () => {
    state.view = {}; $("people-filter").hidden = true; paintFilters(state.counts); reload();
  });
  $("pause").addEventListener("click", async () => {
    const want = !(state.status && state.status.paused);
    const s = await post("/api/intake", { paused: want });
    if (s) {
      paintStatus(s);
      toast(want ? "Intake paused: new files are recorded, nothing is filed until you resume" : "Intake resumed");
    }
  });
  $("help-button").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
  $("help").addEventListener("click", (e) => { if (e.target === $("help")) $("help").hidden = true; });
  $("loupe-close").addEventListener("click", closeLoupe);
  $("compare-close").addEventListener("click", closeCompare);
  setupLoupe();
  setupWhatif();
  // The grid first: the server answers one request at a time per core, and the
  // header's figures (counts over the whole library) must not hold the photos back.
  // And the first page before the event stream: the stream starts from the change
  // number that page was read at, so nothing filed in between is missed or shown twice.
  await loadPage();
  startEvents();
  new IntersectionObserver((entries) => { if (entries.some((x) => x.isIntersecting)) loadPage(); })
    .observe($("more"));
  await Promise.all([
    getJSON("/api/status").then(([s]) => {
      paintStatus(s);
      state.threshold = s.blur_threshold;
      if (document.activeElement !== $("threshold")) {
        $("threshold").value = String(s.blur_threshold);
        $("whatif-result").textContent = "in force";
        $("whatif-result").className = "muted";
      }
      if (state.loupe) paintLoupe();
    }),
    getJSON("/api/counts").then(([c]) => paintFilters(c)),
  ]);
  document.body.dataset.ready = "1";
}

main();


// ---- people ------------------------------------------------------------------------
// Faces grouped into people: name a person, merge two, split faces off, "not this person",
// and the grid filtered to one person. Each action goes to the service like an override.

const FACE_PX = 72;

function faceTile(f) {
  const t = el("button", "face-tile");
  t.type = "button";
  t.dataset.face = f.face_id;
  t.title = `face ${f.face_id}${f.confirmed ? " (confirmed)" : ""}: click to select, for a split`;
  const [x1, y1, x2, y2] = f.box;
  const [w, h] = f.photo_size || [0, 0];
  if (f.preview && w && h && x2 > x1) {
    // The face cut out of the photo's small preview by CSS alone: no image is made for it.
    const k = FACE_PX / Math.max(x2 - x1, y2 - y1);
    t.style.backgroundImage = `url("/api/photos/${f.photo_id}/preview/s")`;
    t.style.backgroundSize = `${w * k}px ${h * k}px`;
    t.style.backgroundPosition = `${-x1 * k + (FACE_PX - (x2 - x1) * k) / 2}px ${-y1 * k + (FACE_PX - (y2 - y1) * k) / 2}px`;
  }
  if (f.confirmed) t.classList.add("confirmed");
  t.addEventListener("click", () => t.classList.toggle("selected"));
  const no = el("span", "not", "×");
  no.title = "Not this person";
  no.addEventListener("click", (e) => { e.stopPropagation(); peopleAction({ op: "not", face: f.face_id, person: t.closest(".person").dataset.person | 0 }); });
  t.append(no);
  return t;
}

function personRow(p, everyone) {
  const row = el("section", "person");
  row.dataset.person = p.person_id;
  const head = el("div", "person-head");
  const name = el("input", "person-name");
  name.value = p.name || "";
  name.placeholder = `Unnamed ${p.person_id}: type a name, Enter`;
  name.setAttribute("aria-label", `Name of person ${p.person_id}`);
  name.addEventListener("keydown", (e) => {
    e.stopPropagation();
    if (e.key === "Enter" && name.value.trim()) peopleAction({ op: "name", person: p.person_id, name: name.value.trim() });
  });
  const count = el("span", "muted", `${p.faces.length} face${p.faces.length === 1 ? "" : "s"}`);
  const show = el("button", "", "Show photos");
  show.type = "button";
  show.addEventListener("click", () => {
    state.view = { person: p.person_id };
    showPeople(false);
    $("people-filter").hidden = false;
    $("people-filter").textContent = `Photos of ${p.name || "unnamed " + p.person_id} · clear ×`;
    paintFilters(state.counts);
    reload();
  });
  const merge = el("select", "merge");
  merge.append(el("option", "", "Merge into…"));
  for (const o of everyone) {
    if (o.person_id === p.person_id) continue;
    const opt = el("option", "", o.name || `unnamed ${o.person_id}`);
    opt.value = o.person_id;
    merge.append(opt);
  }
  merge.addEventListener("change", () => {
    if (merge.value) peopleAction({ op: "merge", person: merge.value | 0, other: p.person_id });
  });
  const split = el("button", "", "Split selected");
  split.type = "button";
  split.addEventListener("click", () => {
    const faces = [...row.querySelectorAll(".face-tile.selected")].map((t) => t.dataset.face | 0);
    if (faces.length) peopleAction({ op: "split", person: p.person_id, faces });
    else toast("Select the faces that are someone else first", true);
  });
  head.append(name, count, show, merge, split);
  const faces = el("div", "person-faces");
  for (const f of p.faces) faces.append(faceTile(f));
  row.append(head, faces);
  return row;
}

async function loadPeople() {
  const box = $("people");
  let people;
  try { [people] = await getJSON("/api/people"); } catch (e) { return; }
  box.textContent = "";
  if (!people.length) {
    box.append(el("p", "empty", "No people yet: faces are grouped once two photos show the same person."));
    return;
  }
  for (const p of people) box.append(personRow(p, people));
}

function showPeople(on) {
  $("people").hidden = !on;
  $("grid").hidden = on;
  $("people-button").setAttribute("aria-pressed", String(on));
  if (on) loadPeople();
}

async function peopleAction(body) {
  const r = await post("/api/people", body);
  if (!r || !r.request) return;
  for (let i = 0; i < 50; i++) {
    await new Promise((res) => setTimeout(res, 200));
    let n;
    try { [n] = await getJSON(`/api/requests/${r.request}`); } catch (e) { break; }
    if (!n.done) continue;
    toast(n.message || (n.ok ? "done" : "refused"), !n.ok);
    break;
  }
  loadPeople();
}
