// The client side of /ws/sync/: apply every committed change exactly once and
// in order, across disconnects (docs/protocol.md, docs/sync.md).
//
// Rules: load the snapshot (its seq says which state it is), then open the
// socket and resume after that seq so nothing slips between the two. Apply
// only the change numbered applied+1; drop older ones; a gap, or a hello or
// heartbeat ahead of us, asks for a resume; while a resume is pending gaps are
// ignored because its replay covers them. "reset" means the log no longer
// holds what we missed: load the snapshot again, then resume after it.
//
// Usage:
//   const stream = new SyncStream({ loadSnapshot: async () => {
//     const snap = await (await fetch("/api/items/")).json();
//     render(snap.items);
//     return snap.seq;            // the seq the loaded state reflects
//   }});
//   stream.addEventListener("change", (e) => apply(e.detail));  // in seq order
//   await stream.loadSnapshot();
//   stream.attach(new ReconnectingSocket("/ws/sync/", { watchdogMs: 45000 }).start());
//
// The socket is anything with send(message) -> bool (false when not open),
// reconnectNow(), and "open", "close" and "message" (detail: parsed JSON)
// events, such as the ReconnectingSocket of ./socket.js.
//
// Shapes (a filtered part of the catalog): pass `shape` ({model:"item",
// category:…, q:…, …}) and a loadSnapshot that loads that shape's snapshot;
// the stream then sends "subscribe" instead of "resume" on every (re)connect,
// expects gaps in seq, detects a loss by `prev > applied`, and moves
// `applied` on "subscribed", "resumed" and "heartbeat". setShape(shape)
// switches to another shape (reloads the snapshot, then subscribes);
// setShape(shape, { reload: false }) replaces it without a reload, for a
// shape that grows by rows the page loaded itself (a page further on, ids of
// `also_ids`): it subscribes after `applied`, so the server replays the new
// shape's changes from there. Each subscribe carries an id and only the
// "subscribed" that echoes the latest one ends the wait. Changes that arrive
// while a subscribe is pending may belong to the old shape: they are dropped
// and, once "subscribed" comes, resumed instead.
//
// Events: "change" (detail: the change message, applied in seq order),
// "snapshot" (detail: {seq}) after each (re)load, "seq" (detail: {seq}) after
// every applied change.

const RESUME_TIMEOUT_MS = 15000;

export class SyncStream extends EventTarget {
  constructor({ loadSnapshot, shape = null, resumeTimeoutMs = RESUME_TIMEOUT_MS, retryMaxMs = 10000 } = {}) {
    super();
    this.shape = shape;
    this.subscribePending = false;
    this.subscribeCount = 0;
    this.subscribeId = null;
    this.skippedWhileSubscribing = false;
    if (typeof loadSnapshot !== "function") throw new TypeError("loadSnapshot must be a function returning the seq");
    this._load = loadSnapshot;
    this.resumeTimeoutMs = resumeTimeoutMs;
    this.retryMaxMs = retryMaxMs;
    this.applied = -1;
    this.subscribed = false;
    this.resumePending = false;
    this.reloading = false;
    this.resumeTimer = 0;
    this.socket = null;
    this.lastChangeAt = 0;
  }

  /** Load the snapshot through the callback; retry with backoff until it works. */
  async loadSnapshot() {
    this.reloading = true;
    let delayMs = 500;
    for (;;) {
      try {
        const seq = await this._load();
        if (!Number.isInteger(seq) || seq < 0) throw new Error(`snapshot seq ${seq} is not a seq`);
        this.applied = seq;
        break;
      } catch (error) {
        this.dispatchEvent(new CustomEvent("snapshoterror", { detail: { error } }));
        await new Promise((r) => setTimeout(r, delayMs + Math.random() * delayMs));
        delayMs = Math.min(delayMs * 2, this.retryMaxMs);
      }
    }
    this.reloading = false;
    this.dispatchEvent(new CustomEvent("snapshot", { detail: { seq: this.applied } }));
    return this.applied;
  }

  /** Follow `socket`: resume on every (re)connect, handle what the server sends. */
  attach(socket) {
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.resumePending = false;
      this.subscribePending = false;
      this.subscribed = false;
      this.resume();
    });
    socket.addEventListener("close", () => {
      this.resumePending = false;
      clearTimeout(this.resumeTimer);
    });
    socket.addEventListener("message", (event) => this.handle(event.detail));
    return this;
  }

  /**
   * Follow another shape (null: the whole stream needs a new socket).
   * With `reload: false` the snapshot is kept: the caller holds the new
   * shape's rows up to `applied` (or newer), and the server replays its
   * changes after `applied`.
   */
  async setShape(shape, { reload = true } = {}) {
    this.shape = shape;
    this.subscribed = false;
    if (reload) await this.loadSnapshot();
    this.resubscribe();
  }

  /** Send `subscribe` for the current shape now, whatever was pending. */
  resubscribe() {
    this.subscribed = false;
    this.subscribePending = false;
    this.resumePending = false;
    clearTimeout(this.resumeTimer);
    this.resume();
  }

  /** Ask the server for every change after the last one applied (of the shape). */
  resume() {
    if (this.resumePending || this.reloading || this.applied < 0 || !this.socket) return;
    if (this.shape && !this.subscribePending && !this.subscribed) {
      const id = `s${++this.subscribeCount}`;
      if (!this.socket.send({ type: "subscribe", shape: this.shape, after: this.applied, id })) return;
      this.subscribeId = id;
      this.subscribePending = true;
      this.skippedWhileSubscribing = false;
    } else if (!this.socket.send({ type: "resume", after: this.applied })) return;
    this.resumePending = true;
    clearTimeout(this.resumeTimer);
    // A resume that never completes means a broken connection: start over.
    this.resumeTimer = setTimeout(() => this.socket.reconnectNow(), this.resumeTimeoutMs);
  }

  /** Handle one message from /ws/sync/. */
  handle(message) {
    switch (message.type) {
      case "hello":
      case "heartbeat":
        if (this.shape) {
          // A shaped socket's heartbeat: everything of the shape up to seq was sent.
          if (message.type === "heartbeat" && !this.resumePending && this.subscribed) {
            this.applied = Math.max(this.applied, message.seq);
          }
        } else if (!this.resumePending && message.seq > this.applied) this.resume();
        break;
      case "subscribed":
        // The answer to an earlier subscribe: the server has yet to switch.
        if (!this.subscribePending || message.id !== this.subscribeId) break;
        this.resumePending = false;
        this.subscribePending = false;
        clearTimeout(this.resumeTimer);
        this.subscribed = true;
        if (this.skippedWhileSubscribing) this.resume();
        else this.applied = Math.max(this.applied, message.seq);
        break;
      case "change":
        this._change(message);
        break;
      case "resumed":
        // A resume sent before the pending subscribe: its end says nothing
        // of the new shape.
        if (this.subscribePending) break;
        this.resumePending = false;
        clearTimeout(this.resumeTimer);
        if (this.shape) this.applied = Math.max(this.applied, message.seq);
        else if (message.seq > this.applied) this.resume();
        break;
      case "reset":
        this.resumePending = false;
        this.subscribePending = false;
        this.subscribed = false;
        clearTimeout(this.resumeTimer);
        this.loadSnapshot().then(() => this.resume());
        break;
      default:
        break;
    }
  }

  _change(message) {
    if (this.shape && this.subscribePending) {
      this.skippedWhileSubscribing = true;
      return;
    }
    if (this.reloading || message.seq <= this.applied) return;
    const missed = this.shape ? message.prev > this.applied : message.seq !== this.applied + 1;
    if (missed) {
      if (!this.resumePending) this.resume();
      return;
    }
    this.applied = message.seq;
    this.lastChangeAt = performance.now();
    this.dispatchEvent(new CustomEvent("change", { detail: message }));
    this.dispatchEvent(new CustomEvent("seq", { detail: { seq: this.applied } }));
  }
}
