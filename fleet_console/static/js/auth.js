// The staff token: from the login form (commerce), a `#token=` fragment (wall screens) or this
// tab's sessionStorage. Nothing here is trusted for security: core checks every call.

const KEY = "hc.console.token";
export const STAFF_ROLES = new Set(["admin", "fleet_manager"]);

export function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return null;
  }
}

export function expired(claims, nowMs = Date.now()) {
  return !claims || typeof claims.exp !== "number" || claims.exp * 1000 <= nowMs;
}

/** Why this token cannot drive the console, or "" when it can. */
export function refusal(token) {
  const claims = claimsOf(token);
  if (!claims) return "That sign-in token is not valid.";
  if (expired(claims)) return "Your session has expired: sign in again.";
  if (!STAFF_ROLES.has(claims.role)) {
    return `This console is for fleet managers and admins; you are signed in as ${claims.role}.`;
  }
  return "";
}

/** A token passed as `#token=...` wins (then leaves the address bar), else the stored one. */
export function initialToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    const token = decodeURIComponent(m[1]);
    history.replaceState(null, "", location.pathname + location.search);
    store(token);
    return token;
  }
  return sessionStorage.getItem(KEY) || "";
}

export function store(token) {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
}

export async function login(commerceUrl, email, password) {
  let res;
  try {
    res = await fetch(`${commerceUrl}/api/v1/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email, password }),
    });
  } catch (err) {
    throw new Error(`Cannot reach the sign-in service at ${commerceUrl} (${err.message}).`);
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.detail || body.title || `Sign-in failed (${res.status}).`);
  return body.access_token;
}
