// One small map component for the apps, over MapLibre GL JS served by core from the
// installed `maplibre` package (/apps/vendor/). Without configured tiles the base is a plain
// background: the points and routes still show where things are. Tiles (OpenStreetMap data)
// carry their attribution. Without WebGL the map
// says so instead of failing.

const OSM = "© OpenStreetMap contributors";

function style(tileUrl) {
  const sources = {};
  const layers = [{ id: "bg", type: "background", paint: { "background-color": "#e8e4da" } }];
  if (tileUrl) {
    sources.tiles = { type: "raster", tiles: [tileUrl], tileSize: 256, attribution: OSM };
    layers.push({ id: "tiles", type: "raster", source: "tiles" });
  }
  return { version: 8, sources, layers };
}

export class AppMap {
  /** @param {HTMLElement} el  @param {{tileUrl?: string|null, center?: [number, number]}} opts */
  constructor(el, opts = {}) {
    this.el = el;
    this.markers = new Map();
    this.lines = new Map();
    this.map = null;
    if (!window.maplibregl || !hasWebGL()) {
      el.innerHTML = '<p class="fallback">The map needs WebGL, which this browser does not offer.</p>';
      return;
    }
    try {
      this.map = new maplibregl.Map({
        container: el, style: style(opts.tileUrl), center: opts.center || [0, 0], zoom: 13,
        attributionControl: { compact: true },
      });
      this.map.keyboard.enable();
      this.ready = new Promise((resolve) => this.map.on("load", resolve));
    } catch (err) {
      el.innerHTML = `<p class="fallback">The map could not start (${err.message}).</p>`;
      this.map = null;
    }
  }

  /** A point marker (kind: chef | door | courier), moved if it exists. */
  point(id, lat, lng, kind, label) {
    if (!this.map) return;
    let m = this.markers.get(id);
    if (!m) {
      const dot = document.createElement("div");
      dot.className = `pin ${kind}`;
      dot.title = label;
      dot.setAttribute("role", "img");
      dot.setAttribute("aria-label", label);
      m = new maplibregl.Marker({ element: dot }).setLngLat([lng, lat]).addTo(this.map);
      this.markers.set(id, m);
    } else {
      m.setLngLat([lng, lat]);
    }
  }

  drop(id) {
    this.markers.get(id)?.remove();
    this.markers.delete(id);
  }

  /** A route drawn through `points` ([[lat, lng], ...]). */
  async line(id, points, color = "#ef6c00") {
    if (!this.map) return;
    await this.ready;
    const data = { type: "Feature", geometry: { type: "LineString",
      coordinates: points.map(([lat, lng]) => [lng, lat]) }, properties: {} };
    const src = this.map.getSource(id);
    if (src) { src.setData(data); return; }
    this.map.addSource(id, { type: "geojson", data });
    this.map.addLayer({ id, type: "line", source: id,
      paint: { "line-color": color, "line-width": 4, "line-opacity": 0.8 } });
  }

  /** After the map's box was shown or resized. */
  resize() {
    this.map?.resize();
  }

  /** Frame every marker. */
  fit() {
    if (!this.map || this.markers.size === 0) return;
    const b = new maplibregl.LngLatBounds();
    for (const m of this.markers.values()) b.extend(m.getLngLat());
    this.map.fitBounds(b, { padding: 40, maxZoom: 16, duration: 0 });
  }
}

function hasWebGL() {
  try {
    const c = document.createElement("canvas");
    return !!(c.getContext("webgl2") || c.getContext("webgl"));
  } catch {
    return false;
  }
}
