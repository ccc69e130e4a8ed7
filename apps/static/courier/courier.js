// The courier app: sign in (commerce), go online with a vehicle (core), stream the phone's
// position over /ws/courier in batches with a bounded buffer replayed after a reconnect
// (core drops fixes not newer than the last it has, so a replay never duplicates), answer
// offers before they expire, carry the job (picked up → delivered, with the server's rules
// shown as messages) and see today's earnings. A reload mid-job comes back to the job.

import { AppMap } from "/apps/shared/map.js";
import { ApiError, Session, appConfig, minutes, money } from "/apps/shared/session.js";

const session = new Session("courier", "delivery");
const $ = (id) => document.getElementById(id);
const SEND_EVERY_MS = 1000;
const BUFFER_MAX = 600;  // ~10 min of fixes at 1 Hz: older ones are no use to dispatch
const BUFFER_KEY = "hc.courier.fixes";

let socket = null;
let watchId = null;
let buffer = JSON.parse(sessionStorage.getItem(BUFFER_KEY) || "[]");
let offer = null;
let countdown = null;
let job = null;
let map = null;
let here = null;
let wakeLock = null;
let online = false;

function show(id, text) {
  $(id).textContent = text;
  $(id).hidden = !text;
}

function km(m) {
  if (m === null || m === undefined) return "distance unknown";
  return m < 1000 ? `${m} m` : `${(m / 1000).toFixed(1)} km`;
}

function leg(m, s) {
  return m === null || m === undefined ? "distance unknown" : `${km(m)}, ${minutes(s)}`;
}

// -- position ---------------------------------------------------------------------------
function remember(fix) {
  buffer.push(fix);
  if (buffer.length > BUFFER_MAX) buffer.splice(0, buffer.length - BUFFER_MAX);
  sessionStorage.setItem(BUFFER_KEY, JSON.stringify(buffer));
}

function flush() {
  if (!buffer.length || !socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({ type: "LOCATIONS", payload: buffer }));
  buffer = [];
  sessionStorage.removeItem(BUFFER_KEY);
}

function startGps() {
  if (watchId !== null || !("geolocation" in navigator)) return;
  watchId = navigator.geolocation.watchPosition((pos) => {
    const c = pos.coords;
    here = [c.latitude, c.longitude];
    const fix = { lat: c.latitude, lng: c.longitude, ts: Math.round(pos.timestamp) };
    if (c.accuracy !== null && c.accuracy >= 0) fix.accuracy = c.accuracy;
    if (c.speed !== null && c.speed >= 0) fix.speed = c.speed;
    if (c.heading !== null && c.heading >= 0 && c.heading < 360) fix.heading = c.heading;
    remember(fix);
    $("gps").textContent = "GPS on";
    if (map) map.point("me", here[0], here[1], "courier", "You");
  }, (err) => {
    $("gps").textContent = `GPS unavailable (${err.message || "permission denied"})`;
  }, { enableHighAccuracy: true, maximumAge: 0 });
}

function stopGps() {
  if (watchId !== null) navigator.geolocation.clearWatch(watchId);
  watchId = null;
  $("gps").textContent = "GPS off";
}

// -- socket -----------------------------------------------------------------------------
function connect() {
  if (!session.token || !online) return;
  socket = session.socket("/ws/courier");
  let alive = null;
  socket.onopen = () => {
    $("live").textContent = "Connected";
    flush();  // what was buffered while away goes first
    alive = setInterval(() => socket.send(JSON.stringify({ type: "PING" })), 25000);
  };
  socket.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "OFFER") showOffer(msg.payload);
    else if (msg.type === "OFFER_EXPIRED" || msg.type === "OFFER_WITHDRAWN") {
      if (offer && offer.order_id === msg.payload.order_id) hideOffer(
        msg.type === "OFFER_EXPIRED" ? "The offer expired." : "The order was cancelled.");
      if (job && job.order_id === msg.payload.order_id) loadJob();
    } else if (["ASSIGNED", "UNASSIGNED", "ORDER_READY"].includes(msg.type)) loadJob();
  };
  socket.onclose = () => {
    clearInterval(alive);
    socket = null;
    if (!online || !session.token) return;
    $("live").textContent = "Reconnecting…";
    setTimeout(connect, 2000);
  };
}

// -- offers -----------------------------------------------------------------------------
function showOffer(o) {
  offer = o;
  $("offer-pay").textContent = money(o.payout_cents);
  $("offer-chef").textContent = o.chef_name || "Kitchen";
  $("offer-pickup").textContent = o.pickup_address || `${o.pickup.lat.toFixed(5)}, ${o.pickup.lng.toFixed(5)}`;
  $("offer-to-pickup").textContent = leg(o.pickup_distance_m, o.pickup_eta_s);
  $("offer-dropoff").textContent = o.dropoff_address || "the customer's door";
  $("offer-to-door").textContent = leg(o.dropoff_distance_m, o.dropoff_eta_s);
  $("offer-items").textContent = `${o.items_count} item${o.items_count === 1 ? "" : "s"}`;
  $("offer").hidden = false;
  $("offer").dataset.orderId = o.order_id;
  clearInterval(countdown);
  const tick = () => {
    const left = Math.max(0, Math.ceil((o.expires_at - Date.now()) / 1000));
    $("offer-countdown").textContent = String(left);
    if (left === 0) hideOffer("The offer expired.");
  };
  tick();
  countdown = setInterval(tick, 500);
  $("accept").focus();
}

function hideOffer(why = "") {
  clearInterval(countdown);
  offer = null;
  $("offer").hidden = true;
  show("shift-error", why);
}

async function answer(verb) {
  if (!offer) return;
  const o = offer;
  $("accept").disabled = $("decline").disabled = true;
  try {
    await session.call("POST", `/api/v1/delivery/offers/${o.offer_id}/${verb}`);
    hideOffer();
  } catch (err) {
    hideOffer(err instanceof ApiError && err.status === 409
      ? "That offer is no longer open." : err.message);
  } finally {
    $("accept").disabled = $("decline").disabled = false;
  }
  await loadJob();
}

// -- the job ----------------------------------------------------------------------------
const STATUS = { assigned: "to the kitchen", picked_up: "food on board", delivering: "to the door",
  delivered: "delivered" };

async function loadJob() {
  let list;
  try {
    list = await session.call("GET", "/api/v1/delivery/orders");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signOut("Your session has expired: sign in again.");
    return;
  }
  job = list.orders.find((o) => o.status !== "delivered") || null;
  if (!job) {
    $("job").hidden = true;
    releaseWakeLock();
    return;
  }
  $("job").hidden = false;
  $("hint").hidden = true;  // busy: the hint no longer applies
  $("job").dataset.orderId = job.order_id;
  $("job-number").textContent = `#${job.order_number}`;
  $("job-status").textContent = STATUS[job.status] || job.status;
  $("job-status").dataset.status = job.status;
  $("job-chef").textContent = job.chef_name || "Kitchen";
  $("job-pickup").textContent = job.pickup_address || "see the map";
  $("job-dropoff").textContent = `${job.dropoff_address || "see the map"} (${leg(job.dropoff_distance_m, job.dropoff_eta_s)})`;
  $("job-customer").textContent = job.customer_name || "Customer";
  $("job-phone").textContent = job.customer_phone_masked ? `phone ${job.customer_phone_masked}` : "";
  $("job-notes").textContent = job.instructions || "–";
  $("job-pay").textContent = money(job.payout_cents);
  const onBoard = job.status === "picked_up" || job.status === "delivering";
  $("picked").hidden = onBoard;
  $("delivered").hidden = !onBoard;
  if (!map) map = new AppMap($("map"), { config: await appConfig() });
  map.resize();
  map.point("chef", job.pickup.lat, job.pickup.lng, "chef", `Kitchen: ${job.chef_name}`);
  map.point("door", job.dropoff.lat, job.dropoff.lng, "door", "The door");
  if (here) map.point("me", here[0], here[1], "courier", "You");
  const stops = onBoard ? [[job.dropoff.lat, job.dropoff.lng]]
    : [[job.pickup.lat, job.pickup.lng], [job.dropoff.lat, job.dropoff.lng]];
  if (here) stops.unshift(here);
  map.line("route", await ride(stops));
  map.fit();
  holdWakeLock();
}

// The route through `stops` as core's travel model rides it (GET /routing/route: along the
// streets when core has road data, else the straight line), asked again only when the
// stops change or the courier has moved away from where it was asked.
let ridden = { key: "", from: null, points: [] };
async function ride(stops) {
  const key = stops.slice(here ? 1 : 0).map((p) => p.join(",")).join(";") + $("vehicle").value;
  const moved = here && (!ridden.from || Math.hypot(here[0] - ridden.from[0],
    (here[1] - ridden.from[1]) * Math.cos((here[0] * Math.PI) / 180)) * 111_320 > 40);
  if (key === ridden.key && !moved) return ridden.points;
  const points = [];
  for (let i = 0; i + 1 < stops.length; i++) {
    const [a, b] = [stops[i], stops[i + 1]];
    try {
      const q = `from_lat=${a[0]}&from_lng=${a[1]}&to_lat=${b[0]}&to_lng=${b[1]}&vehicle=${$("vehicle").value}`;
      const leg = await session.call("GET", `/api/v1/routing/route?${q}`);
      points.push(...leg.geometry.coordinates.map(([lng, lat]) => [lat, lng]));
      $("map").dataset.routeModel = leg.model;  // "roads" or "straight-line"
    } catch {
      points.push(a, b);  // no route (off the map): the straight line still points the way
    }
  }
  ridden = { key, from: here, points };
  $("map").dataset.routePoints = String(points.length);
  return points;
}

const SAYS = {  // the server's refusals, as a courier should read them
  too_far_from_dropoff: "You are not at the door yet: deliver when you are there.",
};

async function progress(status) {
  if (!job) return;
  $("job-error").hidden = true;
  flush();  // the server judges "near the door" by the last fix it has
  try {
    await session.call("PUT", `/api/v1/delivery/orders/${job.order_id}`, { status });
  } catch (err) {
    const code = err.problem?.type?.split(":").pop();
    show("job-error", `${SAYS[code] || "Not accepted"}${err.message ? ` (${err.message})` : ""}`);
    return;
  }
  await loadJob();
  await earnings();
}

async function holdWakeLock() {
  if (wakeLock || !("wakeLock" in navigator) || document.visibilityState !== "visible") return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
    wakeLock.addEventListener("release", () => { wakeLock = null; });
  } catch { /* not granted: the screen may sleep */ }
}

function releaseWakeLock() {
  wakeLock?.release();
  wakeLock = null;
}

async function earnings() {
  try {
    const e = await session.call("GET", "/api/v1/delivery/earnings", undefined, { commerce: true });
    $("earnings").textContent = `${money(e.today.earnings_cents)} from ${e.today.orders} job${e.today.orders === 1 ? "" : "s"}`;
    $("earnings").dataset.cents = String(e.today.earnings_cents);
  } catch { /* shown next time */ }
}

// -- shift ------------------------------------------------------------------------------
async function setOnline(want) {
  $("shift-error").hidden = true;
  try {
    const s = await session.call("PUT", "/api/v1/delivery/availability",
      want ? { online: true, vehicle: $("vehicle").value } : { online: false });
    online = s.state !== "offline";
  } catch (err) {
    show("shift-error", err.status === 409 ? "Finish your job before going offline." : err.message);
    return;
  }
  localStorage.setItem("hc.courier.online", online ? "1" : "");
  $("online").textContent = online ? "Go offline" : "Go online";
  $("online").dataset.online = String(online);
  if (online) { startGps(); connect(); } else { stopGps(); socket?.close(); }
}

function signOut(why = "") {
  online = false;
  stopGps();
  socket?.close();
  session.signOut();
  $("shift").hidden = $("job").hidden = $("offer").hidden = $("logout").hidden = true;
  $("login").hidden = false;
  show("login-error", why);
}

async function start() {
  $("login").hidden = true;
  $("shift").hidden = $("logout").hidden = false;
  await earnings();
  await loadJob();
  if (job || localStorage.getItem("hc.courier.online")) await setOnline(true);  // a reload
  try {
    const open = await session.call("GET", "/api/v1/delivery/offers");
    if (open.offers.length) showOffer(open.offers[0]);
  } catch { /* the socket re-sends it */ }
}

// Idle and online: where dispatch expects orders (GET /delivery/hint; null: stay).
async function loadHint() {
  let hint = null;
  if (online && !job && !offer) {
    try {
      ({ hint } = await session.call("GET", "/api/v1/delivery/hint"));
    } catch { /* advice only: show none */ }
  }
  $("hint").hidden = !hint;
  if (hint) {
    $("hint").dataset.cell = hint.cell;
    $("hint").textContent = `Busier area ${(hint.dist_m / 1000).toFixed(1)} km away: `
      + `${hint.demand.toFixed(1)} orders expected soon, ${hint.supply} couriers waiting there.`;
  }
}

setInterval(flush, SEND_EVERY_MS);
setInterval(loadHint, 30_000);
setInterval(() => { if (job) loadJob(); }, 5000);  // distances and the route follow the ride
document.addEventListener("visibilitychange", () => { if (job) holdWakeLock(); });
$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").hidden = true;
  try {
    await session.signIn($("email").value, $("password").value);
    await start();
  } catch (err) {
    show("login-error", err.message);
  }
});
$("logout").addEventListener("click", () => signOut());
$("online").addEventListener("click", () => setOnline(!online));
$("accept").addEventListener("click", () => answer("accept"));
$("decline").addEventListener("click", () => answer("decline"));
$("picked").addEventListener("click", () => progress("picked_up"));
$("delivered").addEventListener("click", () => progress("delivered"));
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/courier/sw.js").catch(() => {});

if (session.token) start();
else $("login").hidden = false;
