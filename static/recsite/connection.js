// The connection indicator: one state for all of the page's sockets.
//
// data-state is "live" when every socket the page needs is open, "reconnecting"
// while any of them is connecting or waiting to retry, "offline" when one gave
// up (a Retry button then restarts it). A socket closed for good with a "log
// in" code does not count: the page works without it.

const LABELS = {
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

export class ConnectionIndicator {
  constructor(root) {
    this.root = root;
    this.label = root.querySelector("[data-field='label']");
    this.rtt = root.querySelector("[data-field='rtt']");
    this.retry = root.querySelector("[data-action='retry']");
    this.sockets = [];
    this.everLive = false;
    this.retry.addEventListener("click", () => {
      for (const socket of this.sockets) socket.reconnectNow();
    });
    window.addEventListener("online", () => this.update());
    window.addEventListener("offline", () => this.update());
  }

  /** Track `socket` (a ReconnectingSocket). */
  watch(socket) {
    this.sockets.push(socket);
    socket.addEventListener("statechange", () => this.update());
    this.update();
  }

  /** Show the latest event round trip (send → ack) in milliseconds. */
  setRoundTrip(ms) {
    const rounded = Math.round(ms);
    this.root.dataset.rttMs = String(rounded);
    this.rtt.textContent = `${rounded} ms`;
    this.rtt.hidden = false;
    this.rtt.title = "Last event round trip: sent → acknowledged";
  }

  state() {
    const states = this.sockets.map((s) => s.state).filter((s) => s !== "fatal" && s !== "closed");
    if (states.length === 0) return this.sockets.length ? "offline" : "reconnecting";
    if (states.includes("stopped")) return "offline";
    if (states.every((s) => s === "open")) return "live";
    return "reconnecting";
  }

  update() {
    const state = this.state();
    if (state === "live") this.everLive = true;
    this.root.dataset.state = state;
    let text = LABELS[state];
    if (state === "reconnecting" && !this.everLive) text = "Connecting…";
    if (state !== "live" && navigator.onLine === false) text += " (no network)";
    this.label.textContent = text;
    this.retry.hidden = state !== "offline";
  }
}
