// The customer's tracking page: one order named by the share token in the address. State
// from GET /api/v1/track/<token>; live updates over /ws/track/<token>; when the socket
// cannot open (blocked by a proxy, or `?poll` in the address) it polls instead.

import { AppMap } from "/apps/shared/map.js";
import { appConfig, minutes } from "/apps/shared/session.js";

const token = decodeURIComponent(location.pathname.split("/track/")[1] || "");
const $ = (id) => document.getElementById(id);
const POLL_MS = 3000;
const STEPS = ["placed", "accepted", "preparing", "ready", "picked_up", "delivering", "delivered"];
const LABEL = {
  placed: "Order placed", pending: "Order placed", accepted: "Chef accepted",
  preparing: "Being prepared", ready: "Ready for pickup", picked_up: "Picked up",
  delivering: "On the way", delivered: "Delivered", cancelled: "Cancelled", refunded: "Refunded",
};

let map = null;
let polling = null;
let socket = null;
let ended = false;

function problem(text) {
  $("problem").textContent = text;
  $("problem").hidden = false;
  $("order").hidden = $("steps").hidden = $("map").hidden = true;
  ended = true;
  stopPolling();
  if (socket) socket.close();
}

function setEta(etaS) {
  $("eta").textContent = etaS === null || etaS === undefined ? "–" : minutes(etaS);
  $("eta").dataset.etaS = etaS ?? "";
}

function setCourier(lat, lng) {
  if (!map) return;
  map.point("courier", lat, lng, "courier", "Your courier");
}

function render(t) {
  $("number").textContent = t.order_number;
  $("chef").textContent = t.chef_name || "your chef";
  $("status-text").textContent = LABEL[t.status] || t.status;
  $("status-text").dataset.status = t.status;
  $("order").hidden = $("steps").hidden = $("map").hidden = false;
  setEta(t.active ? t.eta_s : null);
  const seen = new Map(t.timeline.map((s) => [s.status, s.at]));
  const steps = t.status === "cancelled" || t.status === "refunded"
    ? [...t.timeline.map((s) => s.status)] : STEPS;
  $("timeline").replaceChildren(...steps.map((s) => {
    const li = document.createElement("li");
    const at = seen.get(s);
    li.dataset.step = s;
    li.dataset.done = String(Boolean(at));
    li.textContent = at ? `${LABEL[s] || s} · ${new Date(at).toLocaleTimeString()}` : LABEL[s] || s;
    return li;
  }));
  if (map) {
    if (t.pickup) map.point("chef", t.pickup.lat, t.pickup.lng, "chef", `Kitchen: ${t.chef_name}`);
    if (t.dropoff) map.point("door", t.dropoff.lat, t.dropoff.lng, "door", "Your door");
    if (t.courier) setCourier(t.courier.lat, t.courier.lng);
    else map.drop("courier");
    if (!render.framed) { map.resize(); map.fit(); render.framed = true; }
  }
  if (!t.active) {
    ended = true;
    stopPolling();
    $("live").textContent = "";
  }
}

async function refresh() {
  let res;
  try {
    res = await fetch(`/api/v1/track/${encodeURIComponent(token)}`);
  } catch {
    $("live").textContent = "Offline: retrying…";
    return;
  }
  if (res.status === 410) return problem("This tracking link has expired.");
  if (res.status === 404) return problem("This tracking link is not valid.");
  if (!res.ok) { $("live").textContent = "Updates paused: retrying…"; return; }
  render(await res.json());
}

function startPolling() {
  if (polling || ended) return;
  $("live").textContent = "Updating every few seconds";
  polling = setInterval(refresh, POLL_MS);
}

function stopPolling() {
  clearInterval(polling);
  polling = null;
}

function connect() {
  if (ended) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let opened = false;
  try {
    socket = new WebSocket(`${scheme}://${location.host}/ws/track/${encodeURIComponent(token)}`);
  } catch {
    return startPolling();
  }
  let alive = null;
  socket.onopen = () => {
    opened = true;
    stopPolling();
    $("live").textContent = "Live";
    alive = setInterval(() => socket.send(JSON.stringify({ type: "PING" })), 25000);
  };
  socket.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "DELIVERY_LOCATION") {
      setCourier(msg.payload.location.lat, msg.payload.location.lng);
      setEta(msg.payload.eta_s);
    } else if (msg.type === "ORDER_STATUS_UPDATE") {
      refresh();  // the timeline and the chef's name come with the whole state
    }
  };
  socket.onclose = (ev) => {
    clearInterval(alive);
    if (ev.code === 4410) return problem("This tracking link has expired.");
    if (ev.code === 4404) return problem("This tracking link is not valid.");
    if (ended) return;
    startPolling();  // blocked or dropped: poll, and try the socket again later
    setTimeout(connect, opened ? 2000 : 30000);
  };
}

async function main() {
  if (!token) return problem("This tracking link is not valid.");
  const config = await appConfig();
  map = new AppMap($("map"), { config });
  await refresh();
  if (ended) return;
  if (new URLSearchParams(location.search).has("poll") || !("WebSocket" in window)) startPolling();
  else connect();
}

main();
