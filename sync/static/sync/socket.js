// A WebSocket that reconnects with exponential backoff and jitter.
//
// States: "connecting" (first attempt or a retry in flight), "open", "retrying"
// (waiting for the next attempt), "stopped" (gave up after maxAttempts; a
// network "online" event, the tab becoming visible or reconnectNow() restarts
// it) and "fatal" (the server closed with a code in fatalCodes, e.g. 4401 "log
// in": retrying would only loop).
//
// Events: "open", "message" (detail: the parsed JSON), "close" (detail:
// {code, reason}), "statechange" (detail: state).

const DEFAULT_FATAL_CODES = [4401, 4403];

export class ReconnectingSocket extends EventTarget {
  constructor(
    path,
    {
      minDelayMs = 500,
      maxDelayMs = 15000,
      maxAttempts = 40,
      fatalCodes = DEFAULT_FATAL_CODES,
      // Close and reconnect when nothing arrives for this long (0: never). A
      // half-open TCP connection otherwise looks "live" for minutes.
      watchdogMs = 0,
    } = {},
  ) {
    super();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${scheme}//${location.host}${path}`;
    this.minDelayMs = minDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.maxAttempts = maxAttempts;
    this.fatalCodes = new Set(fatalCodes);
    this.watchdogMs = watchdogMs;
    this.state = "connecting";
    this.attempt = 0;
    this.ws = null;
    this.retryTimer = 0;
    this.watchdogTimer = 0;
    this.lastCloseCode = null;
    this.connects = 0;

    window.addEventListener("online", () => this.reconnectNow());
    // The browser knows the network is gone before TCP does; drop the socket
    // now so the page says "reconnecting" and resumes when the network returns.
    window.addEventListener("offline", () => {
      if (this.state === "open" || this.state === "connecting") this._drop(4000, "offline");
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.state === "stopped") this.reconnectNow();
    });
    window.addEventListener("pagehide", () => this.close());
    // Back/forward cache: the page comes back with its sockets closed.
    window.addEventListener("pageshow", (event) => {
      if (event.persisted && this.state === "closed") {
        this.state = "retrying";
        this.reconnectNow();
      }
    });
  }

  start() {
    this._connect();
    return this;
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send `message` as JSON; return false when the socket is not open. */
  send(message) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** Connect now, forgetting the backoff (the user asked, or the network came back). */
  reconnectNow() {
    if (this.state === "fatal" || this.state === "closed") return;
    if (this.state === "open") return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    if (this.ws) this._detach(this.ws);
    this._connect();
  }

  /** Close for good (page leaving). */
  close() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.watchdogTimer);
    if (this.ws) {
      const ws = this.ws;
      this._detach(ws);
      try {
        ws.close(1000, "bye");
      } catch {
        /* already closed */
      }
    }
    this._setState("closed");
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("statechange", { detail: state }));
  }

  _connect() {
    this._setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this._scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.connects += 1;
      this._armWatchdog();
      this._setState("open");
      this.dispatchEvent(new Event("open"));
    };
    ws.onmessage = (event) => {
      this._armWatchdog();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn("ignoring a non-JSON frame from", this.url);
        return;
      }
      this.dispatchEvent(new CustomEvent("message", { detail: message }));
    };
    ws.onerror = () => {
      /* a close event always follows; handled there */
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this._closed(event.code, event.reason);
    };
  }

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    if (this.ws === ws) this.ws = null;
  }

  /** Abandon the current socket at once (its close handshake may never finish). */
  _drop(code, reason) {
    const ws = this.ws;
    if (!ws) return;
    this._detach(ws);
    try {
      ws.close(code, reason);
    } catch {
      /* already closing */
    }
    this._closed(code, reason);
  }

  _closed(code, reason) {
    clearTimeout(this.watchdogTimer);
    this.ws = null;
    this.lastCloseCode = code;
    this.dispatchEvent(new CustomEvent("close", { detail: { code, reason } }));
    if (this.fatalCodes.has(code)) {
      this._setState("fatal");
      return;
    }
    this._scheduleRetry();
  }

  _scheduleRetry() {
    if (this.attempt >= this.maxAttempts) {
      this._setState("stopped");
      return;
    }
    // "Equal jitter": half the capped exponential delay plus a random half, so a
    // server restart is not met by every tab at the same instant.
    const cap = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** this.attempt);
    const delayMs = cap / 2 + Math.random() * (cap / 2);
    this.attempt += 1;
    this.nextRetryAt = Date.now() + delayMs;
    this._setState("retrying");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this._connect(), delayMs);
  }

  _armWatchdog() {
    if (!this.watchdogMs) return;
    clearTimeout(this.watchdogTimer);
    this.watchdogTimer = setTimeout(() => this._drop(4000, "silent"), this.watchdogMs);
  }
}
