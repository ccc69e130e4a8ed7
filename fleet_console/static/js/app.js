// The fleet console: login, the live map, KPIs, the order list and drawer (with manual
// assign/unassign) and the zone editor. Test hooks: data-* attributes and window.hcConsole.

import { Api, ApiError } from "./api.js";
import { claimsOf, expired, initialToken, login, refusal, store } from "./auth.js";
import { LiveFeed, newScene, upsertOrder } from "./live.js";
import { MapView } from "./map.js";
import { AppMap } from "/apps/shared/map.js";

const $ = (id) => document.getElementById(id);
const KPI_MS = 2000, LIST_MS = 3000, CHEFS_MS = 15000, DRAWER_MS = 3000, STALE_MS = 90_000;
const HINTS_MS = 10_000;

let config = { commerce_url: null, commerce_port: 8001, tile_url: null, same_origin: false };
let session = null; // { token, api, feed, timers }

function commerceUrl() {
  if (config.same_origin) return location.origin; // through the gateway: one origin, no CORS
  return config.commerce_url
    || `${location.protocol}//${location.hostname}:${config.commerce_port}`;
}

function showError(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

function describe(err) {
  if (err instanceof ApiError) {
    const p = err.problem;
    return `${err.status} ${p.title || ""}${p.detail ? `: ${p.detail}` : ""}`.trim();
  }
  return String(err.message || err);
}

// -- login -------------------------------------------------------------------------------

function showLogin(message = "") {
  if (session) endSession();
  store("");
  $("app").hidden = true;
  $("login").hidden = false;
  showError($("login-error"), message);
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-submit").disabled = true;
  showError($("login-error"), "");
  try {
    const token = await login(commerceUrl(), $("login-email").value, $("login-password").value);
    const why = refusal(token);
    if (why) { showError($("login-error"), why); return; }
    store(token);
    startSession(token);
  } catch (err) {
    showError($("login-error"), err.message);
  } finally {
    $("login-submit").disabled = false;
  }
});

$("logout").addEventListener("click", () => showLogin(""));

// -- the session ---------------------------------------------------------------------------

const scene = newScene();
let map = null;
let fitted = null; // the couriers' bbox the map was last fitted to

function endSession() {
  session.feed.stop();
  session.timers.forEach(clearInterval);
  session = null;
  scene.couriers.clear(); scene.orders.clear(); scene.heat.clear(); scene.chefs.clear();
  closeDrawer();
}

function authLost() {
  if (!session) return true;
  if (expired(claimsOf(session.token))) {
    showLogin("Your session has expired: sign in again.");
    return true;
  }
  return false;
}

function startSession(token) {
  $("login").hidden = true;
  $("app").hidden = false;
  const claims = claimsOf(token);
  $("who").textContent = `${claims.email || claims.sub} (${claims.role})`;
  const api = new Api(token, () => showLogin("Your session has expired: sign in again."));
  if (!map) {
    const base = new AppMap($("basemap"), { config, interactive: false, attribution: false });
    $("attribution").hidden = !(base.map ? base.drawsOsm : config.tile_url);
    map = new MapView($("map"), {
      base, tileUrl: config.tile_url,
      onClick: onMapClick,
      onView: (bbox) => { if (session) { session.feed.view(bbox); scheduleChefs(); } },
    });
    map.scene = scene;
  }
  const feed = new LiveFeed({
    token, scene,
    onChange: () => { map.invalidate(); updateCounts(); },
    onStatus: (state, text) => { $("status").dataset.state = state; $("status").textContent = text; },
    onHeat: () => { fetchOutlines(); map.invalidate(); },
    onAuthLost: authLost,
  });
  session = { token, api, feed, timers: [] };
  feed.start();
  feed.view(map.bbox());
  const every = (ms, fn) => { fn(); session.timers.push(setInterval(fn, ms)); };
  every(KPI_MS, refreshKpis);
  every(LIST_MS, refreshOrders);
  every(CHEFS_MS, refreshChefs);
  every(HINTS_MS, refreshHints);
  every(5000, sweepStale);
  loadZones();
}

function updateCounts() {
  const c = $("map");
  c.dataset.courierCount = scene.couriers.size;
  c.dataset.moves = scene.moves;
  c.dataset.orderCount = scene.orders.size;
}

function sweepStale() {
  const cutoff = performance.now() - STALE_MS;
  for (const [id, c] of scene.couriers) if (c.seen < cutoff) scene.couriers.delete(id);
  updateCounts();
  map.invalidate();
}

// -- KPIs ----------------------------------------------------------------------------------

async function refreshKpis() {
  if (!session) return;
  try {
    const k = await session.api.get("/api/v1/fleet/stats");
    const set = (name, v) => { document.querySelector(`[data-kpi="${name}"]`).textContent = v; };
    set("couriers-online", k.couriers_online);
    set("couriers-idle", k.couriers_idle);
    set("orders-waiting", k.orders_waiting);
    set("orders-late", k.orders_late);
    set("median-assign-s", k.median_assign_s ?? "–");
    // Follow the fleet's extent (e.g. a simulator starting) until the user takes the map.
    if (k.bbox && !map.userMoved && (!fitted || !sameBox(fitted, k.bbox))) {
      fitted = k.bbox;
      map.fit(padded(k.bbox));
    }
  } catch (err) {
    if (session) $("status").textContent = `stats: ${describe(err)}`;
  }
}

function sameBox(a, b) {
  const tol = 0.15 * Math.max(a[2] - a[0], a[3] - a[1], 0.01);
  return a.every((v, i) => Math.abs(v - b[i]) <= tol);
}

function padded([a, b, c, d]) {
  const px = Math.max(0.005, (c - a) * 0.05), py = Math.max(0.005, (d - b) * 0.05);
  return [a - px, b - py, c + px, d + py];
}

$("fit").addEventListener("click", () => {
  const pts = [...scene.couriers.values()].map((c) => [c.lng, c.lat]);
  for (const o of scene.orders.values()) pts.push([o.pickup.lng, o.pickup.lat]);
  if (!pts.length) return;
  map.userMoved = false; // follow the fleet again
  const lngs = pts.map((p) => p[0]), lats = pts.map((p) => p[1]);
  map.fit(padded([Math.min(...lngs), Math.min(...lats), Math.max(...lngs), Math.max(...lats)]));
});

// -- orders list -----------------------------------------------------------------------------

let tab = "waiting";
document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => {
  tab = b.dataset.tab;
  document.querySelectorAll(".tabs button").forEach((x) => x.classList.toggle("on", x === b));
  refreshOrders();
}));

const EMPTY = {
  waiting: "No order is waiting for a courier.", assigned: "No order is assigned right now.",
  late: "No order is late.", stuck: "No order is stuck.",
};

function age(ms) {
  if (!ms) return "";
  const m = Math.floor((Date.now() - ms) / 60000);
  return m < 1 ? "just now" : m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function orderFromRow(r) {
  return {
    id: r.order_id, number: r.order_number, status: r.status, courierId: r.courier_id || "",
    pickup: r.pickup, dropoff: r.dropoff, promisedMs: r.promised_at,
  };
}

async function refreshOrders() {
  if (!session) return;
  try {
    const { orders } = await session.api.get(`/api/v1/fleet/orders?status=${tab}`);
    const ul = $("orders");
    ul.replaceChildren(...orders.map((r) => {
      upsertOrder(scene, orderFromRow(r));
      const li = document.createElement("li");
      li.dataset.orderId = r.order_id;
      li.dataset.state = r.status;
      li.classList.toggle("sel", r.order_id === scene.selected);
      const late = r.late ? " · late" : "";
      const who = `${r.chef_name || "a kitchen"} → ${r.customer_name || "a customer"}`;
      const b = document.createElement("b");
      b.textContent = r.order_number || r.order_id.slice(0, 8);
      const small = document.createElement("small");
      small.textContent = ` ${r.status}${late}${r.created_at ? ` · ${age(r.created_at)}` : ""}`;
      li.append(b, ` ${who}`, small);
      li.title = "Open the order";
      li.tabIndex = 0;  // keyboard: Tab to it, Enter opens it
      li.addEventListener("click", () => openDrawer(r.order_id));
      li.addEventListener("keydown", (e) => { if (e.key === "Enter") openDrawer(r.order_id); });
      return li;
    }));
    if (!orders.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = EMPTY[tab] || "No orders.";
      ul.replaceChildren(li);
    }
    updateCounts();
    map.invalidate();
  } catch (err) {
    if (session) $("status").textContent = `orders: ${describe(err)}`;
  }
}

// -- chefs and hexagons ----------------------------------------------------------------------

let chefTimer = null;
function scheduleChefs() { clearTimeout(chefTimer); chefTimer = setTimeout(refreshChefs, 600); }

async function refreshChefs() {
  if (!session || !map) return;
  const [lng0, lat0, lng1, lat1] = map.bbox();
  const lat = (lat0 + lat1) / 2, lng = (lng0 + lng1) / 2;
  const radius = Math.min(50_000, Math.max(500, (Math.hypot(lat1 - lat0, (lng1 - lng0)
    * Math.cos((lat * Math.PI) / 180)) * 111_320) / 2));
  try {
    const { couriers: chefs } = await session.api.get(
      `/api/v1/fleet/chefs/nearby?lat=${lat}&lng=${lng}&radius_m=${Math.round(radius)}&limit=500`);
    scene.chefs = new Map(chefs.map((c) => [c.courier_id, c]));
    map.invalidate();
  } catch { /* chefs are decoration: keep the last ones */ }
}

async function refreshHints() {
  if (!session || !map) return;
  try {
    const { hints } = await session.api.get("/api/v1/fleet/hints");
    scene.hints = hints;
    $("map").dataset.hintCount = hints.length;
    map.invalidate();
  } catch { /* hints are advice: keep the last ones */ }
}

let outlinesPending = false;
async function fetchOutlines() {
  if (!session || outlinesPending) return;
  const missing = [...scene.heat.keys()].filter((c) => !scene.outlines.has(c));
  if (!missing.length) return;
  outlinesPending = true;
  try {
    for (let i = 0; i < missing.length; i += 200) {
      const batch = missing.slice(i, i + 200).join(",");
      const { cells } = await session.api.get(`/api/v1/fleet/cells?cells=${batch}`);
      for (const c of cells) scene.outlines.set(c.cell, c.boundary);
    }
    map.invalidate();
  } catch { /* retried with the next SUPPLY_DEMAND */ } finally {
    outlinesPending = false;
  }
}

$("layer-heat").addEventListener("change", (e) => { scene.showHeat = e.target.checked; map.invalidate(); });
$("layer-routes").addEventListener("change", (e) => { scene.showRoutes = e.target.checked; map.invalidate(); });
$("layer-hints").addEventListener("change", (e) => { scene.showHints = e.target.checked; map.invalidate(); });

// -- order drawer ----------------------------------------------------------------------------

let drawerTimer = null;
const ASSIGNABLE = new Set(["waiting", "offered"]);
const UNASSIGNABLE = new Set(["assigned", "offered"]);

function closeDrawer() {
  clearInterval(drawerTimer);
  scene.selected = null;
  $("drawer").hidden = true;
  $("drawer").dataset.state = "closed";
  if (map) map.invalidate();
}
$("drawer-close").addEventListener("click", closeDrawer);

async function openDrawer(orderId) {
  clearInterval(drawerTimer);
  scene.selected = orderId;
  $("drawer").hidden = false;
  $("drawer").dataset.orderId = orderId;
  $("drawer").dataset.state = "loading";
  showError($("drawer-error"), "");
  $("drawer-candidates").replaceChildren();
  map.invalidate();
  await renderDrawer(orderId, true);
  drawerTimer = setInterval(() => renderDrawer(orderId, false), DRAWER_MS);
}

function hhmm(ms) { return ms ? new Date(ms).toLocaleTimeString() : "–"; }

async function renderDrawer(orderId, withCandidates) {
  if (!session || scene.selected !== orderId) return;
  let t;
  try {
    t = await session.api.get(`/api/v1/fleet/orders/${encodeURIComponent(orderId)}/timeline`);
  } catch (err) {
    showError($("drawer-error"), describe(err));
    $("drawer").dataset.state = "error";
    return;
  }
  if (scene.selected !== orderId) return;
  const o = scene.orders.get(orderId);
  $("drawer-number").textContent = (o && o.number) || orderId.slice(0, 8);
  $("drawer-state").textContent = t.state;
  $("drawer").dataset.state = t.state;
  $("drawer-courier").textContent = t.courier_name || t.courier_id || "none";
  $("drawer-courier").dataset.courierId = t.courier_id || "";
  $("drawer-promised").textContent = hhmm(t.promised_at);
  $("drawer-ready").textContent = t.ready_at
    ? `${t.food_ready ? "ready" : "expected"} ${hhmm(t.ready_at)}` : "–";
  $("drawer-timeline").replaceChildren(...t.steps.map((s) => {
    const li = document.createElement("li");
    li.textContent = `${hhmm(s.at_ms)} ${s.step}`;
    return li;
  }));
  $("drawer-assign").hidden = !ASSIGNABLE.has(t.state);
  $("drawer-unassign").hidden = !UNASSIGNABLE.has(t.state);
  $("map").classList.toggle("picking", ASSIGNABLE.has(t.state));
  try {
    const track = await session.api.get(`/api/v1/orders/${encodeURIComponent(orderId)}/track`);
    $("drawer-eta").textContent = track.location
      ? `${track.location.payload.eta} (${track.location.payload.eta_s} s)`
      : (track.status.payload.estimatedTime ? hhmm(Date.parse(track.status.payload.estimatedTime)) : "–");
  } catch {
    $("drawer-eta").textContent = "–";
  }
  if (withCandidates && ASSIGNABLE.has(t.state) && o) await listCandidates(o);
}

async function listCandidates(o) {
  try {
    const { couriers } = await session.api.get(`/api/v1/fleet/couriers/nearby?lat=${o.pickup.lat}`
      + `&lng=${o.pickup.lng}&radius_m=10000&limit=8&status=idle`);
    $("drawer-candidates").replaceChildren(...couriers.map((c) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.assignCourier = c.courier_id;
      b.textContent = `${c.name || c.courier_id} · ${Math.round(c.distance_m)} m`;
      b.addEventListener("click", () => assign(o.id, c.courier_id));
      li.append(b);
      return li;
    }));
    if (!couriers.length) $("drawer-candidates").textContent = "No idle courier within 10 km.";
  } catch (err) {
    showError($("drawer-error"), describe(err));
  }
}

async function assign(orderId, courierId) {
  showError($("drawer-error"), "");
  try {
    const r = await session.api.post(`/api/v1/fleet/orders/${encodeURIComponent(orderId)}/assign`,
      { courier_id: courierId });
    upsertOrder(scene, orderFromRow(r));
    $("drawer-candidates").replaceChildren();
  } catch (err) {
    showError($("drawer-error"), describe(err));
  }
  await renderDrawer(orderId, false);
  refreshOrders();
}

$("drawer-unassign").addEventListener("click", async () => {
  const orderId = scene.selected;
  if (!orderId) return;
  showError($("drawer-error"), "");
  try {
    const r = await session.api.post(`/api/v1/fleet/orders/${encodeURIComponent(orderId)}/unassign`);
    upsertOrder(scene, orderFromRow(r));
  } catch (err) {
    showError($("drawer-error"), describe(err));
  }
  await renderDrawer(orderId, true);
  refreshOrders();
});

// -- map clicks and the zone editor ------------------------------------------------------------

let drawing = false;
let editing = null; // the zone being edited (its id, name, active), or null for a new one
let zones = [];     // the last GET /api/v1/fleet/zones

function onMapClick(sx, sy) {
  if (drawing) {
    const [lat, lng] = map.toLatLng(sx, sy);
    scene.draft.push([lng, lat]);
    $("zone-vertices").textContent = scene.draft.length;
    map.invalidate();
    return;
  }
  const hit = map.pick(scene, sx, sy);
  if (!hit) return;
  if (hit.kind === "order") { openDrawer(hit.id); return; }
  const state = $("drawer").dataset.state;
  if (scene.selected && ASSIGNABLE.has(state)) assign(scene.selected, hit.id);
}

function setDrawing(on, zone = null) {
  drawing = on;
  editing = on ? zone : null;
  // An edited zone starts from its own outline (the closing vertex is implied).
  scene.draft = zone ? editableRing(zone.geometry).slice(0, -1).map((p) => [...p]) : [];
  $("zone-vertices").textContent = scene.draft.length;
  $("zone-mode").textContent = zone ? `Edit “${zone.name}”` : "New zone";
  $("zone-name").value = zone ? zone.name : "New zone";
  $("zone-panel").hidden = !on;
  $("zone-panel").dataset.state = "idle";
  $("zone-panel").dataset.mode = zone ? "edit" : "new";
  $("zone-draw").dataset.state = on ? "on" : "off";
  showError($("zone-error"), "");
  $("map").classList.toggle("picking", on);
  map.invalidate();
}

$("zone-draw").addEventListener("click", () => setDrawing(!drawing));
$("zone-cancel").addEventListener("click", () => setDrawing(false));
$("zone-undo").addEventListener("click", () => {
  scene.draft.pop();
  $("zone-vertices").textContent = scene.draft.length;
  map.invalidate();
});
$("zone-clear").addEventListener("click", () => {
  scene.draft = [];
  $("zone-vertices").textContent = "0";
  map.invalidate();
});

$("zone-panel").addEventListener("submit", async (e) => {
  e.preventDefault();
  const ring = [...scene.draft, scene.draft[0]].filter(Boolean);
  const body = { name: $("zone-name").value, geometry: { type: "Polygon", coordinates: [ring] } };
  try {
    if (editing) {
      await session.api.put(`/api/v1/fleet/zones/${editing.id}`, { ...body, active: editing.active });
    } else {
      await session.api.post("/api/v1/fleet/zones", body);
    }
    setDrawing(false);
    $("zone-panel").dataset.state = "saved";
    loadZones();
  } catch (err) {
    $("zone-panel").dataset.state = "error";
    showError($("zone-error"), describe(err));
  }
});

function polygonOf(geometry) {
  return geometry.type === "Feature" ? geometry.geometry : geometry;
}

function ringsOf(geometry) {
  const g = polygonOf(geometry);
  if (g.type === "Polygon") return [g.coordinates[0]];
  if (g.type === "MultiPolygon") return g.coordinates.map((p) => p[0]);
  return [];
}

// The outline the editor can redraw: a plain polygon without holes (else null: the editor
// would silently drop parts, so such zones are edited through the API).
function editableRing(geometry) {
  const g = polygonOf(geometry);
  return g.type === "Polygon" && g.coordinates.length === 1 ? g.coordinates[0] : null;
}

function renderZones() {
  const ul = $("zones");
  ul.replaceChildren(...zones.map((z) => {
    const li = document.createElement("li");
    li.dataset.zoneId = z.id;
    li.classList.toggle("off", !z.active);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = z.name;
    const cells = document.createElement("small");
    cells.textContent = `${z.cells} cells`;
    const active = document.createElement("input");
    active.type = "checkbox";
    active.checked = z.active;
    active.title = "Active";
    active.dataset.zoneActive = z.id;
    active.addEventListener("change", () => saveZone(z, { active: active.checked }));
    const edit = document.createElement("button");
    edit.type = "button";
    edit.textContent = "Edit";
    edit.dataset.zoneEdit = z.id;
    edit.disabled = !editableRing(z.geometry);
    if (edit.disabled) edit.title = "Multi-part or holed zones are edited through the API";
    edit.addEventListener("click", () => setDrawing(true, z));
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "Delete";
    del.dataset.zoneDelete = z.id;
    del.addEventListener("click", () => deleteZone(z));
    li.append(active, name, cells, edit, del);
    return li;
  }));
  ul.dataset.count = zones.length;
  if (!zones.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "No service zone yet: couriers may work anywhere (Draw zone adds one).";
    ul.replaceChildren(li);
  }
}

async function saveZone(zone, change) {
  try {
    showError($("zones-error"), "");
    await session.api.put(`/api/v1/fleet/zones/${zone.id}`, {
      name: zone.name, geometry: zone.geometry, active: zone.active, ...change,
    });
  } catch (err) {
    showError($("zones-error"), describe(err));
  }
  loadZones();
}

async function deleteZone(zone) {
  if (!window.confirm(`Delete the service zone “${zone.name}”?`)) return;
  try {
    showError($("zones-error"), "");
    await session.api.del(`/api/v1/fleet/zones/${zone.id}`);
  } catch (err) {
    showError($("zones-error"), describe(err));
  }
  loadZones();
}

async function loadZones() {
  try {
    zones = (await session.api.get("/api/v1/fleet/zones")).data;
    scene.zones = zones.filter((z) => z.active).flatMap((z) => ringsOf(z.geometry));
    renderZones();
    map.invalidate();
  } catch (err) {
    showError($("zones-error"), `zones: ${describe(err)}`);
  }
}

// -- start ----------------------------------------------------------------------------------

window.hcConsole = {
  scene,
  get map() { return map; },
  courier: (id) => { const c = scene.couriers.get(id); return c && { lat: c.lat, lng: c.lng, status: c.status }; },
  courierOnScreen: (id) => { const c = scene.couriers.get(id); return c ? map.courierOnScreen(c) : null; },
  drawFrame: () => map.draw(performance.now()),
};

async function boot() {
  try {
    const res = await fetch("/api/v1/console/config");
    if (res.ok) config = await res.json();
  } catch { /* defaults */ }
  const token = initialToken();
  const why = token ? refusal(token) : "";
  if (token && !why) startSession(token);
  else showLogin(why);
}

boot();
