// The chef's kitchen screen: paid orders arrive live (NEW_ORDER on /ws/chef, with a sound),
// the chef moves each along the seed's machine (accept → preparing → ready, or decline) at
// commerce, and sees the courier's ETA to the kitchen (core's track snapshot) to time the food.

import { enablePush, pushSupported } from "/apps/shared/push.js";
import { ApiError, Session, minutes } from "/apps/shared/session.js";

const session = new Session("kitchen", "chef");
const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["pending", "accepted", "preparing", "ready", "picked_up", "delivering"]);
const NEXT = {  // status -> [[label, target, style]]
  pending: [["Accept", "accepted", ""], ["Decline", "cancelled", "danger"]],
  accepted: [["Start preparing", "preparing", ""]],
  preparing: [["Food ready", "ready", ""]],
};
const LABEL = {
  pending: "New", accepted: "Accepted", preparing: "Preparing", ready: "Ready for pickup",
  picked_up: "Picked up", delivering: "On the way", delivered: "Delivered", cancelled: "Cancelled",
};

let socket = null;
let poller = null;
let etaTimer = null;
let known = new Set();
let audio = null;

function chime() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.6);
  } catch { /* no sound on this device */ }
}

function age(iso) {
  const m = Math.floor((Date.now() - new Date(iso).getTime()) / 60000);
  return m < 1 ? "just now" : `${m} min ago`;
}

function clock(iso) {
  return new Date(iso).toLocaleString(undefined, {
    weekday: "short", hour: "2-digit", minute: "2-digit" });
}

function card(o) {
  const el = document.createElement("article");
  el.className = "card";
  el.dataset.orderId = o.id;
  el.dataset.status = o.status;
  const h = document.createElement("h3");
  h.textContent = `#${o.order_number} · ${LABEL[o.status] || o.status}`;
  const items = document.createElement("ul");
  for (const it of o.items) {
    const li = document.createElement("li");
    li.textContent = `${it.quantity} × ${it.name}${it.notes ? ` (${it.notes})` : ""}`;
    items.append(li);
  }
  const meta = document.createElement("p");
  meta.className = "note";
  meta.textContent = `Placed ${age(o.created_at)}${o.instructions ? ` · “${o.instructions}”` : ""}`;
  const when = document.createElement("p");
  when.className = "scheduled";
  when.hidden = !o.scheduled_for;
  if (o.scheduled_for) {  // a scheduled order: cook for its slot, not now
    when.textContent = `Scheduled for ${clock(o.scheduled_for)} · start cooking at ${clock(o.start_cooking_at)}`;
  }
  const eta = document.createElement("p");
  eta.className = "courier-eta";
  eta.dataset.courierEtaS = "";
  eta.textContent = o.delivery_id ? "Courier assigned" : (ACTIVE.has(o.status) && o.status !== "pending"
    ? "Looking for a courier" : "");
  const row = document.createElement("div");
  row.className = "row";
  for (const [label, target, style] of NEXT[o.status] || []) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (style) b.className = style;
    b.dataset.target = target;
    b.addEventListener("click", () => move(o.id, target, b));
    row.append(b);
  }
  el.append(h, items, when, meta, eta, row);
  return el;
}

async function move(id, target, button) {
  button.disabled = true;
  $("action-error").hidden = true;
  try {
    await session.call("PUT", `/api/v1/chef/orders/${id}/status`, { status: target }, { commerce: true });
  } catch (err) {
    $("action-error").textContent = err.message;
    $("action-error").hidden = false;
  }
  await load();
}

async function load() {
  let page;
  try {
    page = await session.call("GET", "/api/v1/chef/orders?limit=50", undefined, { commerce: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signOut("Your session has expired: sign in again.");
    $("live").textContent = "Cannot load orders: retrying…";
    return;
  }
  const orders = page.data.filter((o) => ACTIVE.has(o.status));
  const fresh = orders.filter((o) => !known.has(o.id) && o.status === "pending");
  if (fresh.length && known.size) chime();
  known = new Set(orders.map((o) => o.id));
  $("orders").replaceChildren(...orders.map(card));
  $("empty").hidden = orders.length > 0;
  await etas();
}

async function etas() {
  for (const el of document.querySelectorAll("#orders article")) {
    const status = el.dataset.status;
    if (!["accepted", "preparing", "ready"].includes(status)) continue;
    try {
      const t = await session.call("GET", `/api/v1/orders/${el.dataset.orderId}/track`);
      const p = el.querySelector(".courier-eta");
      if (t.pickup_eta_s !== null && t.pickup_eta_s !== undefined) {
        p.textContent = `Courier arrives in ${minutes(t.pickup_eta_s)}`;
        p.dataset.courierEtaS = String(t.pickup_eta_s);
      }
    } catch { /* core does not know the order yet */ }
  }
}

function connect() {
  socket = session.socket("/ws/chef");
  socket.onopen = () => { $("live").textContent = "Live"; };
  socket.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "NEW_ORDER") { chime(); load(); }
    else if (msg.type === "ORDER_STATUS_UPDATE") load();
  };
  socket.onclose = () => {
    if (!session.token) return;
    $("live").textContent = "Reconnecting…";
    setTimeout(connect, 3000);
  };
}

function signOut(why = "") {
  session.signOut();
  socket?.close();
  clearInterval(poller);
  clearInterval(etaTimer);
  $("board").hidden = $("logout").hidden = $("notify").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = why;
  $("login-error").hidden = !why;
}

function start() {
  $("login").hidden = true;
  $("board").hidden = $("logout").hidden = false;
  $("notify").hidden = !pushSupported();
  load();
  connect();
  poller = setInterval(load, 15000);  // a missed socket message is picked up here
  etaTimer = setInterval(etas, 5000);
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").hidden = true;
  try {
    await session.signIn($("email").value, $("password").value);
    chime();  // unlocks audio on this gesture, and says the sound works
    start();
  } catch (err) {
    $("login-error").textContent = err.message;
    $("login-error").hidden = false;
  }
});
$("logout").addEventListener("click", () => signOut());
$("notify").addEventListener("click", async () => {
  $("action-error").hidden = true;
  try {
    await enablePush(session, "/kitchen/sw.js");
    $("notify").textContent = "Notifications on";
    $("notify").disabled = true;
  } catch (err) {
    $("action-error").textContent = err.message;
    $("action-error").hidden = false;
  }
});

if (session.token) start();
else $("login").hidden = false;
