// One small map component for the apps and the fleet console, over MapLibre GL JS served by
// core from the installed `maplibre` package (/apps/vendor/). The base is a plain
// background, the streets the road engine rides when core has road data (its vector tiles,
// layer "speeds") and raster tiles when CONSOLE_TILE_URL is set; whatever OpenStreetMap data
// is drawn carries its attribution. Without WebGL the map says so instead of failing.

export const OSM = "© OpenStreetMap contributors";

/** The map's style from core's page config (GET /api/v1/console/config). */
export function baseStyle(config = {}) {
  const sources = {};
  const layers = [{ id: "bg", type: "background", paint: { "background-color": "#e8e4da" } }];
  if (config.tile_url) {
    sources.tiles = { type: "raster", tiles: [config.tile_url], tileSize: 256, attribution: OSM };
    layers.push({ id: "tiles", type: "raster", source: "tiles" });
  }
  if (config.streets_url) {
    // Absolute: MapLibre fetches tiles from a worker. Zoom 12+ only (core's tiles hold the
    // road graph, too dense below); over-zoomed past 18.
    sources.streets = { type: "vector", tiles: [location.origin + config.streets_url],
      minzoom: 12, maxzoom: 18, attribution: OSM };
    if (config.streets_bounds) sources.streets.bounds = config.streets_bounds;
    // Zoom must be the outermost expression: a side street (is_small) is drawn thinner.
    const width = (w, small = w) => ["interpolate", ["exponential", 1.6], ["zoom"],
      12, ["case", ["==", ["get", "is_small"], true], small * 0.3, w * 0.3],
      18, ["case", ["==", ["get", "is_small"], true], small * 4, w * 4]];
    layers.push(
      { id: "streets-casing", type: "line", source: "streets", "source-layer": "speeds",
        layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": "#c9c3b5", "line-width": width(2.6) } },
      { id: "streets", type: "line", source: "streets", "source-layer": "speeds",
        layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": "#ffffff",
          "line-width": width(2, 1.2) } });
  }
  return { version: 8, sources, layers };
}

export class AppMap {
  /**
   * @param {HTMLElement} el
   * @param {{config?: object, center?: [number, number], interactive?: boolean,
   *          attribution?: boolean}} opts  config: core's page config (tiles, streets)
   */
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
      const config = opts.config || {};
      this.drawsOsm = Boolean(config.tile_url || config.streets_url);
      this.map = new maplibregl.Map({
        container: el, style: baseStyle(config), center: opts.center || [0, 0], zoom: 13,
        interactive: opts.interactive !== false,
        attributionControl: opts.attribution === false ? false : { compact: false },
      });
      el.dataset.streets = String(Boolean(config.streets_url));
      window.hcMap = this;  // test hook (one map per page)
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

  /** Show the camera of another view: the centre and MapLibre's zoom (512 px tiles). */
  jumpTo(lat, lng, zoom) {
    this.map?.jumpTo({ center: [lng, lat], zoom });
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
