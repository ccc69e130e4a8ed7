// Web Push for an app: register its service worker, subscribe this browser with the
// deployment's VAPID key (from commerce), and hand the subscription to commerce, which sends
// the user's notifications to it (docs/notifications.md).

function keyBytes(base64url) {
  const s = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(s + "=".repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/** Subscribe this browser for `session`'s user; `worker` is the app's service worker URL.
 *  Throws an Error whose message can be shown. */
export async function enablePush(session, worker) {
  if (!pushSupported()) throw new Error("This browser cannot receive notifications.");
  if (await Notification.requestPermission() !== "granted") {
    throw new Error("Notifications are blocked for this site.");
  }
  const registration = await navigator.serviceWorker.register(worker);
  await navigator.serviceWorker.ready;
  const { public_key: key } = await session.call(
    "GET", "/api/v1/users/me/push-subscriptions/key", undefined, { commerce: true });
  let subscription;
  try {
    subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: keyBytes(key) });
  } catch (err) {
    throw new Error(`The browser's push service refused: ${err.message}`);
  }
  await session.call("POST", "/api/v1/users/me/push-subscriptions", subscription.toJSON(),
                     { commerce: true });
}
