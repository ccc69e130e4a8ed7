// The console's live layers on one <canvas> over the apps' map component (the base: streets,
// tiles, attribution; shared/map.js): pan, zoom, fit and hit-testing here, every layer drawn
// in a single requestAnimationFrame pass (no DOM node per courier: 5,000 stay smooth), the
// base following this camera. Without a base (no WebGL) the canvas draws its own background
// and the optional raster tiles.

const TILE = 256;
const MOVE_MS = 1000; // positions arrive <= 1/s per courier: glide between them over 1 s
export const COURIER_COLOURS = {
  idle: "#2e7d32", offered: "#f9a825", to_pickup: "#1565c0", at_pickup: "#1565c0",
  delivering: "#6a1b9a", offline: "#9e9e9e", "": "#9e9e9e",
};
export const ORDER_COLOURS = { waiting: "#ef6c00", assigned: "#0277bd", late: "#c62828" };

export function mercX(lng) { return (lng + 180) / 360; }
export function mercY(lat) {
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI);
}
function lngOf(x) { return x * 360 - 180; }
function latOf(y) { return (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI; }

export class MapView {
  constructor(canvas, { base = null, tileUrl = null, onClick = () => {}, onView = () => {} } = {}) {
    this.canvas = canvas;
    this.base = base && base.map ? base : null;
    canvas.classList.toggle("over-base", Boolean(this.base));
    this.ctx = canvas.getContext("2d", { alpha: Boolean(this.base) });
    this.tileUrl = tileUrl;
    this.tiles = new Map();
    this.onClick = onClick;
    this.onView = onView;
    this.cx = mercX(77.59); this.cy = mercY(12.97); this.zoom = 12;
    this.dirty = true;
    this.userMoved = false; // once the user pans or zooms, the app stops auto-fitting
    this.animatingUntil = 0;
    this.scene = null; // set by the app: { couriers, orders, chefs, heat, zones, draft, ... }
    this.frameMs = [];
    this._bindInput();
    new ResizeObserver(() => this._resize()).observe(canvas);
    this._resize();
    const loop = (now) => {
      if (this.dirty || now < this.animatingUntil) this.draw(now);
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  get scale() { return TILE * 2 ** this.zoom; }

  _resize() {
    const dpr = window.devicePixelRatio || 1;
    const { clientWidth: w, clientHeight: h } = this.canvas;
    this.w = w; this.h = h; this.dpr = dpr;
    this.canvas.width = Math.max(1, Math.round(w * dpr));
    this.canvas.height = Math.max(1, Math.round(h * dpr));
    this.base?.resize();
    this.invalidate(true);
  }

  invalidate(viewChanged = false) {
    this.dirty = true;
    if (!viewChanged) return;
    // MapLibre's zoom counts 512 px worlds, this one 256 px: one less.
    this.base?.jumpTo(latOf(this.cy), lngOf(this.cx), Math.max(0, this.zoom - 1));
    this.onView(this.bbox());
  }

  animateFor(ms) { this.animatingUntil = Math.max(this.animatingUntil, performance.now() + ms); }

  /** Screen position of a point (CSS pixels). */
  toScreen(lat, lng) {
    const s = this.scale;
    return [(mercX(lng) - this.cx) * s + this.w / 2, (mercY(lat) - this.cy) * s + this.h / 2];
  }

  toLatLng(sx, sy) {
    const s = this.scale;
    return [latOf(this.cy + (sy - this.h / 2) / s), lngOf(this.cx + (sx - this.w / 2) / s)];
  }

  /** [min_lng, min_lat, max_lng, max_lat] on screen. */
  bbox() {
    const [lat0, lng0] = this.toLatLng(0, this.h);
    const [lat1, lng1] = this.toLatLng(this.w, 0);
    return [lng0, lat0, lng1, lat1];
  }

  fit(bbox, padPx = 40) {
    const [lng0, lat0, lng1, lat1] = bbox;
    const dx = Math.max(1e-6, mercX(lng1) - mercX(lng0));
    const dy = Math.max(1e-6, mercY(lat0) - mercY(lat1));
    const zx = Math.log2(Math.max(1, this.w - 2 * padPx) / (TILE * dx));
    const zy = Math.log2(Math.max(1, this.h - 2 * padPx) / (TILE * dy));
    this.zoom = Math.max(2, Math.min(17, Math.min(zx, zy)));
    this.cx = (mercX(lng0) + mercX(lng1)) / 2;
    this.cy = (mercY(lat0) + mercY(lat1)) / 2;
    this.invalidate(true);
  }

  _bindInput() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("pointerdown", (e) => {
      drag = { x: e.offsetX, y: e.offsetY, cx: this.cx, cy: this.cy, moved: false };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
      if (!drag.moved) return;
      this.userMoved = true;
      this.cx = drag.cx - dx / this.scale;
      this.cy = drag.cy - dy / this.scale;
      this.invalidate(true);
    });
    c.addEventListener("pointerup", (e) => {
      if (drag && !drag.moved) this.onClick(e.offsetX, e.offsetY);
      drag = null;
    });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.userMoved = true;
      const [lat, lng] = this.toLatLng(e.offsetX, e.offsetY);
      this.zoom = Math.max(2, Math.min(19, this.zoom - e.deltaY * 0.002));
      // keep the point under the cursor still
      const s = this.scale;
      this.cx = mercX(lng) - (e.offsetX - this.w / 2) / s;
      this.cy = mercY(lat) - (e.offsetY - this.h / 2) / s;
      this.invalidate(true);
    }, { passive: false });
  }

  // -- drawing ---------------------------------------------------------------------------

  draw(now = performance.now()) {
    const t0 = performance.now();
    const { ctx, w, h, dpr } = this;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (this.base) {
      ctx.clearRect(0, 0, w, h);
    } else {
      ctx.fillStyle = "#f4f1ea";
      ctx.fillRect(0, 0, w, h);
      if (this.tileUrl) this._drawTiles();
      else this._drawGraticule();
    }
    const sc = this.scene;
    if (sc) {
      if (sc.showHeat) this._drawHeat(sc);
      this._drawZones(sc);
      if (sc.showRoutes) this._drawRoutes(sc, now);
      if (sc.showHints) this._drawHints(sc, now);
      this._drawChefs(sc);
      this._drawOrders(sc, now);
      this._drawCouriers(sc, now);
      this._drawSelection(sc, now);
    }
    this.dirty = false;
    const ms = performance.now() - t0;
    this.frameMs.push(ms);
    if (this.frameMs.length > 240) this.frameMs.shift();
    return ms;
  }

  _drawGraticule() {
    // A light grid every ~1 km-ish step so panning is visible without tiles.
    const { ctx, w, h } = this;
    const s = this.scale;
    let step = 1 / 2 ** Math.floor(this.zoom + 1 - 3); // ~8 lines across at any zoom
    step = Math.max(step, 1e-9);
    ctx.strokeStyle = "#e2ddd0";
    ctx.lineWidth = 1;
    ctx.beginPath();
    const x0 = this.cx - w / 2 / s, y0 = this.cy - h / 2 / s;
    for (let x = Math.floor(x0 / step) * step; x < x0 + w / s; x += step) {
      const sx = (x - x0) * s; ctx.moveTo(sx, 0); ctx.lineTo(sx, h);
    }
    for (let y = Math.floor(y0 / step) * step; y < y0 + h / s; y += step) {
      const sy = (y - y0) * s; ctx.moveTo(0, sy); ctx.lineTo(w, sy);
    }
    ctx.stroke();
  }

  _drawTiles() {
    const z = Math.max(0, Math.min(19, Math.floor(this.zoom)));
    const n = 2 ** z;
    const size = (TILE * 2 ** this.zoom) / n;
    const x0 = this.cx - this.w / 2 / this.scale, y0 = this.cy - this.h / 2 / this.scale;
    const tx0 = Math.floor(x0 * n), ty0 = Math.max(0, Math.floor(y0 * n));
    const tx1 = Math.floor((x0 + this.w / this.scale) * n);
    const ty1 = Math.min(n - 1, Math.floor((y0 + this.h / this.scale) * n));
    for (let tx = tx0; tx <= tx1; tx++) {
      for (let ty = ty0; ty <= ty1; ty++) {
        const wx = ((tx % n) + n) % n;
        const url = this.tileUrl.replace("{z}", z).replace("{x}", wx).replace("{y}", ty);
        let img = this.tiles.get(url);
        if (!img) {
          img = new Image();
          img.crossOrigin = "anonymous";
          img.onload = () => this.invalidate();
          img.src = url;
          this.tiles.set(url, img);
          if (this.tiles.size > 512) this.tiles.delete(this.tiles.keys().next().value);
        }
        if (img.complete && img.naturalWidth) {
          this.ctx.drawImage(img, (tx / n - x0) * this.scale, (ty / n - y0) * this.scale,
            size + 0.5, size + 0.5);
        }
      }
    }
  }

  _drawHeat(sc) {
    const { ctx } = this;
    for (const cell of sc.heat.values()) {
      const ring = sc.outlines.get(cell.cell);
      if (!ring) continue;
      const gap = cell.demand - cell.supply;
      const strength = Math.min(0.45, 0.08 + 0.06 * Math.abs(gap));
      ctx.fillStyle = gap > 0 ? `rgba(198,40,40,${strength})` : `rgba(46,125,50,${strength * 0.7})`;
      ctx.beginPath();
      ring.forEach(([lat, lng], i) => {
        const [x, y] = this.toScreen(lat, lng);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.closePath();
      ctx.fill();
      ctx.strokeStyle = "rgba(0,0,0,0.12)";
      ctx.stroke();
    }
  }

  _drawZones(sc) {
    const { ctx } = this;
    ctx.lineWidth = 2;
    const poly = (ring, closed) => {
      ctx.beginPath();
      ring.forEach(([lng, lat], i) => {
        const [x, y] = this.toScreen(lat, lng);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      if (closed) ctx.closePath();
    };
    ctx.strokeStyle = "rgba(38,50,56,0.7)";
    ctx.setLineDash([6, 4]);
    for (const ring of sc.zones) { poly(ring, true); ctx.stroke(); }
    ctx.setLineDash([]);
    if (sc.draft.length) {
      ctx.strokeStyle = "#d81b60";
      ctx.fillStyle = "rgba(216,27,96,0.12)";
      poly(sc.draft, sc.draft.length > 2);
      if (sc.draft.length > 2) ctx.fill();
      ctx.stroke();
      ctx.fillStyle = "#d81b60";
      for (const [lng, lat] of sc.draft) {
        const [x, y] = this.toScreen(lat, lng);
        ctx.fillRect(x - 3, y - 3, 6, 6);
      }
    }
    ctx.lineWidth = 1;
  }

  courierAt(c, now) {
    const k = Math.min(1, (now - c.t0) / MOVE_MS);
    return [c.fx + (c.mx - c.fx) * k, c.fy + (c.my - c.fy) * k];
  }

  /** Where a courier is drawn at `now` (CSS pixels): mid-glide, not at its latest fix. */
  courierOnScreen(c, now = performance.now()) {
    const s = this.scale;
    const [mx, my] = this.courierAt(c, now);
    return [(mx - this.cx) * s + this.w / 2, (my - this.cy) * s + this.h / 2];
  }

  _drawRoutes(sc, now) {
    const { ctx } = this;
    const s = this.scale, ox = this.w / 2 - this.cx * s, oy = this.h / 2 - this.cy * s;
    ctx.strokeStyle = "rgba(2,119,189,0.55)";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (const o of sc.orders.values()) {
      if (!o.courierId) continue;
      const c = sc.couriers.get(o.courierId);
      if (!c) continue;
      const [mx, my] = this.courierAt(c, now);
      ctx.moveTo(mx * s + ox, my * s + oy);
      if (!o.onBoard) ctx.lineTo(o.px * s + ox, o.py * s + oy);
      ctx.lineTo(o.dx * s + ox, o.dy * s + oy);
    }
    ctx.stroke();
    ctx.lineWidth = 1;
  }

  /** Repositioning hints: a dashed line from each idle courier to where it should wait. */
  _drawHints(sc, now) {
    const { ctx } = this;
    ctx.strokeStyle = "rgba(106,27,154,0.75)";
    ctx.fillStyle = "rgba(106,27,154,0.75)";
    ctx.lineWidth = 1.5;
    ctx.setLineDash([4, 4]);
    for (const h of sc.hints) {
      const c = sc.couriers.get(h.courier_id);
      if (!c) continue;
      const [x0, y0] = this.courierOnScreen(c, now);
      const [x1, y1] = this.toScreen(h.lat, h.lng);
      ctx.beginPath();
      ctx.moveTo(x0, y0);
      ctx.lineTo(x1, y1);
      ctx.stroke();
      ctx.fillRect(x1 - 3, y1 - 3, 6, 6);
    }
    ctx.setLineDash([]);
    ctx.lineWidth = 1;
  }

  _drawChefs(sc) {
    const { ctx } = this;
    ctx.fillStyle = "#5d4037";
    ctx.beginPath();
    for (const ch of sc.chefs.values()) {
      const [x, y] = this.toScreen(ch.lat, ch.lng);
      if (x < -10 || y < -10 || x > this.w + 10 || y > this.h + 10) continue;
      ctx.moveTo(x, y - 6); ctx.lineTo(x + 5, y + 4); ctx.lineTo(x - 5, y + 4); ctx.closePath();
    }
    ctx.fill();
  }

  _drawOrders(sc, nowMs) {
    const { ctx } = this;
    const s = this.scale, ox = this.w / 2 - this.cx * s, oy = this.h / 2 - this.cy * s;
    const wall = Date.now();
    for (const kind of ["waiting", "assigned", "late"]) {
      ctx.fillStyle = ORDER_COLOURS[kind];
      ctx.beginPath();
      for (const o of sc.orders.values()) {
        if (sc.orderKind(o, wall) !== kind) continue;
        const x = o.px * s + ox, y = o.py * s + oy;
        ctx.rect(x - 4, y - 4, 8, 8);
        const dx = o.dx * s + ox, dy = o.dy * s + oy;
        ctx.rect(dx - 2.5, dy - 2.5, 5, 5);
      }
      ctx.fill();
    }
    void nowMs;
  }

  _drawCouriers(sc, now) {
    const { ctx } = this;
    const s = this.scale, ox = this.w / 2 - this.cx * s, oy = this.h / 2 - this.cy * s;
    const r = this.zoom > 13 ? 4 : 3;
    const groups = new Map();
    let moving = false;
    for (const c of sc.couriers.values()) {
      if (now - c.t0 < MOVE_MS) moving = true;
      let g = groups.get(c.status);
      if (!g) { g = []; groups.set(c.status, g); }
      g.push(c);
    }
    for (const [status, list] of groups) {
      ctx.fillStyle = COURIER_COLOURS[status] || COURIER_COLOURS[""];
      ctx.beginPath();
      for (const c of list) {
        const [mx, my] = this.courierAt(c, now);
        const x = mx * s + ox, y = my * s + oy;
        if (x < -r || y < -r || x > this.w + r || y > this.h + r) continue;
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, 2 * Math.PI);
      }
      ctx.fill();
    }
    if (moving) this.animatingUntil = Math.max(this.animatingUntil, now + 16);
  }

  _drawSelection(sc, now) {
    const { ctx } = this;
    const o = sc.selected && sc.orders.get(sc.selected);
    if (!o) return;
    const s = this.scale, ox = this.w / 2 - this.cx * s, oy = this.h / 2 - this.cy * s;
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2;
    ctx.strokeRect(o.px * s + ox - 7, o.py * s + oy - 7, 14, 14);
    const c = o.courierId && sc.couriers.get(o.courierId);
    if (c) {
      const [mx, my] = this.courierAt(c, now);
      ctx.beginPath();
      ctx.arc(mx * s + ox, my * s + oy, 8, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.lineWidth = 1;
  }

  /** Nearest courier / order pickup within `px` CSS pixels of a screen point. */
  pick(sc, sx, sy, px = 10, now = performance.now()) {
    const s = this.scale, ox = this.w / 2 - this.cx * s, oy = this.h / 2 - this.cy * s;
    let best = null, bestD = px * px;
    for (const c of sc.couriers.values()) {
      const [x, y] = this.courierOnScreen(c, now);
      const d = (x - sx) ** 2 + (y - sy) ** 2;
      if (d <= bestD) { bestD = d; best = { kind: "courier", id: c.id }; }
    }
    for (const o of sc.orders.values()) {
      const d = (o.px * s + ox - sx) ** 2 + (o.py * s + oy - sy) ** 2;
      if (d <= bestD) { bestD = d; best = { kind: "order", id: o.id }; }
    }
    return best;
  }
}
