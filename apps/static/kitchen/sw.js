// The kitchen screen's service worker: shows commerce's Web Push notifications (a new order,
// when to start a scheduled one) while the screen is closed; a tap opens the kitchen.
self.addEventListener("push", (ev) => {
  const msg = ev.data ? ev.data.json() : { title: "HomeChef", body: "", data: {} };
  ev.waitUntil(self.registration.showNotification(msg.title, {
    body: msg.body, data: msg.data, tag: msg.data?.order_id || undefined,
  }));
});

self.addEventListener("notificationclick", (ev) => {
  ev.notification.close();
  ev.waitUntil(self.clients.matchAll({ type: "window" }).then((open) => {
    const here = open.find((c) => new URL(c.url).pathname.startsWith("/kitchen/"));
    return here ? here.focus() : self.clients.openWindow("/kitchen/");
  }));
});
