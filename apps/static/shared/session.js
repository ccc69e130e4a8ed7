// Signing in at commerce from an app served by core, and calling either service with the
// token. The token lives in this tab's sessionStorage; the servers check every call.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

let config = null;

/** Core's public config: where commerce is and which map tiles may be drawn. */
export async function appConfig() {
  if (!config) {
    config = { commerce_url: null, commerce_port: 8001, tile_url: null };
    try {
      const res = await fetch("/api/v1/console/config");
      if (res.ok) config = await res.json();
    } catch { /* defaults */ }
  }
  return config;
}

export async function commerceUrl() {
  const c = await appConfig();
  if (c.same_origin) return location.origin;  // through the gateway: one origin, no CORS
  return c.commerce_url || `${location.protocol}//${location.hostname}:${c.commerce_port}`;
}

export function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return null;
  }
}

export class Session {
  constructor(app, role) {
    this.key = `hc.${app}.token`;
    this.role = role;
    this.token = sessionStorage.getItem(this.key) || "";
    if (this.token && this.refusal(this.token)) this.signOut();
  }

  /** Why `token` cannot drive this app ("" when it can). */
  refusal(token) {
    const c = claimsOf(token);
    if (!c) return "That sign-in token is not valid.";
    if (typeof c.exp !== "number" || c.exp * 1000 <= Date.now()) {
      return "Your session has expired: sign in again.";
    }
    if (c.role !== this.role) return `This app is for ${this.role} accounts; you signed in as ${c.role}.`;
    return "";
  }

  get userId() { return claimsOf(this.token)?.sub || ""; }

  async signIn(email, password) {
    const base = await commerceUrl();
    let res;
    try {
      res = await fetch(`${base}/api/v1/auth/login`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email, password }),
      });
    } catch (err) {
      throw new Error(`Cannot reach the sign-in service (${err.message}).`);
    }
    const body = await res.json().catch(() => ({}));
    if (res.status === 401) throw new Error("Wrong e-mail or password.");
    if (!res.ok) throw new Error(body.detail || `Sign-in failed (${res.status}).`);
    const why = this.refusal(body.access_token);
    if (why) throw new Error(why);
    this.token = body.access_token;
    sessionStorage.setItem(this.key, this.token);
  }

  signOut() {
    this.token = "";
    sessionStorage.removeItem(this.key);
  }

  /** A call to core (path starting /api) or commerce (`{commerce: true}`). */
  async call(method, path, body, { commerce = false } = {}) {
    const base = commerce ? await commerceUrl() : "";
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(base + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = res.status === 204 ? null : await res.json().catch(() => ({}));
    if (!res.ok) throw new ApiError(res.status, data || {});
    return data;
  }

  /** A socket to core with the token as subprotocol (never in the URL). */
  socket(path) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return new WebSocket(`${scheme}://${location.host}${path}`, ["bearer", this.token]);
  }
}

export function money(cents) {
  return (cents / 100).toLocaleString(undefined, { style: "currency", currency: "USD" });
}

export function minutes(s) {
  if (s === null || s === undefined) return "–";
  const m = Math.max(1, Math.ceil(s / 60));
  return m === 1 ? "1 min" : `${m} mins`;
}
