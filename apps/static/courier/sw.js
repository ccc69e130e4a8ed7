// The courier app's service worker: the shell (pages, scripts, map library) is cached so the
// app opens with a bad connection; API calls and sockets always go to the network.
const SHELL = "hc-courier-v1";
const FILES = [
  "/courier/", "/courier/courier.js", "/courier/manifest.webmanifest", "/courier/icon.svg",
  "/apps/shared/apps.css", "/apps/shared/map.js", "/apps/shared/session.js",
  "/apps/vendor/maplibre-gl.js", "/apps/vendor/maplibre-gl.css",
];

self.addEventListener("install", (ev) => {
  ev.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (ev) => {
  ev.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (ev) => {
  const url = new URL(ev.request.url);
  if (ev.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  // Network first (a new deploy shows at once), the cache when offline.
  ev.respondWith(fetch(ev.request).then((res) => {
    const copy = res.clone();
    if (res.ok) caches.open(SHELL).then((c) => c.put(ev.request, copy));
    return res;
  }).catch(() => caches.match(ev.request)));
});
