// The console socket (/ws/console): subscribe to the map's viewport, fold COURIER_POSITION,
// ORDER_MARKER and SUPPLY_DEMAND into the scene, reconnect when the socket drops.

import { mercX, mercY } from "./map.js";

const MAX_SPAN_DEG = 1.2; // the hub caps a view at 5,000 res-7 cells (~160 km square)
const CLOSED = new Set(["delivered", "cancelled", "refunded"]);
const ON_BOARD = new Set(["picked_up", "delivering"]);

export function newScene() {
  return {
    couriers: new Map(), orders: new Map(), chefs: new Map(), heat: new Map(),
    outlines: new Map(), zones: [], draft: [], selected: null, hints: [],
    showHeat: true, showRoutes: true, showHints: true, moves: 0,
    orderKind(o, wallMs) {
      if (o.promisedMs && wallMs > o.promisedMs) return "late";
      return o.courierId ? "assigned" : "waiting";
    },
  };
}

export function upsertCourier(scene, id, lat, lng, status, now = performance.now()) {
  const mx = mercX(lng), my = mercY(lat);
  let c = scene.couriers.get(id);
  if (!c) {
    c = { id, mx, my, fx: mx, fy: my, t0: 0, lat, lng, status, seen: now };
    scene.couriers.set(id, c);
    return c;
  }
  if (c.mx !== mx || c.my !== my) {
    // glide from where it is drawn now to the new fix
    const k = Math.min(1, (now - c.t0) / 1000);
    c.fx += (c.mx - c.fx) * k; c.fy += (c.my - c.fy) * k;
    c.mx = mx; c.my = my; c.t0 = now;
    scene.moves += 1;
  }
  c.lat = lat; c.lng = lng; c.seen = now;
  if (status) c.status = status;
  return c;
}

/** An order from a marker or a REST row ({order_id, status, courier_id, pickup, dropoff}). */
export function upsertOrder(scene, o) {
  if (CLOSED.has(o.status)) { scene.orders.delete(o.id); return null; }
  const prev = scene.orders.get(o.id) || {};
  const merged = {
    ...prev, ...o,
    px: mercX(o.pickup.lng), py: mercY(o.pickup.lat),
    dx: mercX(o.dropoff.lng), dy: mercY(o.dropoff.lat),
    onBoard: ON_BOARD.has(o.status),
    promisedMs: o.promisedMs ?? prev.promisedMs ?? null,
  };
  scene.orders.set(o.id, merged);
  return merged;
}

export function clampBbox([lng0, lat0, lng1, lat1]) {
  const cx = (lng0 + lng1) / 2, cy = (lat0 + lat1) / 2;
  const hx = Math.min(MAX_SPAN_DEG, lng1 - lng0) / 2, hy = Math.min(MAX_SPAN_DEG, lat1 - lat0) / 2;
  return [Math.max(-180, cx - hx), Math.max(-85, cy - hy), Math.min(180, cx + hx),
    Math.min(85, cy + hy)];
}

export class LiveFeed {
  constructor({ token, scene, onChange, onStatus, onHeat, onAuthLost }) {
    Object.assign(this, { token, scene, onChange, onStatus, onHeat, onAuthLost });
    this.bbox = null;
    this.ws = null;
    this.closed = false;
    this.retryMs = 500;
  }

  start() {
    this.closed = false;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    // The token goes as the subprotocols ["bearer", token] (the server accepts "bearer"),
    // never in the URL, where proxies and access logs would keep it.
    const ws = new WebSocket(`${proto}://${location.host}/ws/console`, ["bearer", this.token]);
    this.ws = ws;
    this.onStatus("connecting", "connecting…");
    ws.onopen = () => {
      this.retryMs = 500;
      this.onStatus("live", "live");
      if (this.bbox) this._subscribe();
    };
    ws.onmessage = (e) => this._on(JSON.parse(e.data));
    ws.onclose = (e) => {
      if (this.ws !== ws || this.closed) return;
      this.onStatus("error", `disconnected (${e.code}); retrying…`);
      if (this.onAuthLost()) return; // token expired: the app shows the login form
      setTimeout(() => { if (!this.closed) this.start(); }, this.retryMs);
      this.retryMs = Math.min(10_000, this.retryMs * 2);
    };
  }

  stop() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }

  view(bbox) {
    this.bbox = clampBbox(bbox);
    clearTimeout(this._debounce);
    this._debounce = setTimeout(() => this._subscribe(), 250);
  }

  _subscribe() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.bbox) {
      this.ws.send(JSON.stringify({ type: "SUBSCRIBE", payload: { bbox: this.bbox } }));
    }
  }

  _on(msg) {
    const p = msg.payload;
    switch (msg.type) {
      case "COURIER_POSITION":
        upsertCourier(this.scene, p.courierId, p.location.lat, p.location.lng, p.status || "");
        break;
      case "ORDER_MARKER":
        upsertOrder(this.scene, {
          id: p.orderId, status: p.status, courierId: p.courierId || "",
          pickup: p.pickup, dropoff: p.dropoff, promisedMs: p.promised_ms ?? null,
        });
        break;
      case "SUPPLY_DEMAND":
        this.scene.heat = new Map(p.cells.map((c) => [c.cell, c]));
        this.onHeat();
        break;
      case "PING":
        this.ws.send('{"type":"PONG"}');
        return;
      case "ERROR":
        this.onStatus("error", `${p.reason}: ${p.detail || ""}`);
        return;
      default:
        return;
    }
    this.onChange();
  }
}
