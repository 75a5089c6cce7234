// HTTP helpers: same-origin JSON with the session cookie and Django's CSRF token.

/** Return the value of cookie `name`, or "" when it is not set. */
export function getCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export class HttpError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** Fetch `url` and return its parsed JSON body; throw HttpError on a non-2xx status. */
export async function requestJSON(url, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = getCookie("csrftoken");
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
    signal,
  });
  let payload = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) payload = await response.json();
  if (!response.ok) throw new HttpError(response.status, payload);
  return payload;
}

/** Return an id that is unique across tabs and page loads (crypto.randomUUID needs a secure context). */
export function uniqueId(prefix = "c") {
  const bytes = new Uint8Array(10);
  crypto.getRandomValues(bytes);
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${prefix}-${Date.now().toString(36)}-${hex}`;
}

/** Return `fn` delayed until `waitMs` passed without another call. */
export function debounce(fn, waitMs) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), waitMs);
  };
}

export const reducedMotion = () =>
  window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
