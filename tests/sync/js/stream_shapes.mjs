// Drive sync/static/sync/stream.js with a scripted socket: the shape rules.
// Prints one JSON line: what the stream sent and which changes it applied.
import { SyncStream } from "../../../sync/static/sync/stream.js";

class FakeSocket extends EventTarget {
  constructor() { super(); this.sent = []; }
  send(message) { this.sent.push(message); return true; }
  reconnectNow() { this.sent.push({ reconnect: true }); }
  emit(detail) { this.dispatchEvent(new CustomEvent("message", { detail })); }
}

const shape = { model: "item", category: "books" };
let snapshotSeq = 10;
const stream = new SyncStream({ shape, loadSnapshot: async () => snapshotSeq, resumeTimeoutMs: 60000 });
const applied = [];
stream.addEventListener("change", (e) => applied.push([e.detail.seq, e.detail.op]));
await stream.loadSnapshot();
const socket = new FakeSocket();
stream.attach(socket);
socket.dispatchEvent(new Event("open"));                        // -> subscribe after 10
socket.emit({ type: "hello", seq: 14 });                        // no resume for a shape
socket.emit({ type: "change", seq: 12, op: "upsert", id: 1, prev: 10 });   // replay
socket.emit({ type: "subscribed", seq: 14, id: "s1" });         // skipped one -> resume after 10
socket.emit({ type: "change", seq: 12, op: "upsert", id: 1, prev: 10 });
socket.emit({ type: "resumed", seq: 14 });
socket.emit({ type: "change", seq: 17, op: "leave", id: 1, prev: 14 });    // a gap is normal
socket.emit({ type: "heartbeat", seq: 20 });
socket.emit({ type: "change", seq: 23, op: "upsert", id: 2, prev: 21 });   // prev > applied: lost
socket.emit({ type: "change", seq: 23, op: "upsert", id: 2, prev: 20 });   // the replay: in chain
socket.emit({ type: "resumed", seq: 24 });
snapshotSeq = 30;
await stream.setShape({ model: "item", category: "games" });   // new snapshot, new subscribe
socket.emit({ type: "subscribed", seq: 30, id: "s2" });
// The page adds rows of its own (ids its panels show): no reload, after applied.
await stream.setShape({ model: "item", category: "games", also_ids: [7] }, { reload: false });
socket.emit({ type: "change", seq: 31, op: "upsert", id: 5, prev: 30 });   // old shape: dropped
socket.emit({ type: "subscribed", seq: 30, id: "s2" });         // a late echo: not ours
socket.emit({ type: "subscribed", seq: 31, id: "s3" });         // skipped one -> resume after 30
socket.emit({ type: "change", seq: 31, op: "upsert", id: 7, prev: 30 });
socket.emit({ type: "resumed", seq: 31 });
const result = { sent: socket.sent, applied, final: stream.applied };
clearTimeout(stream.resumeTimer);
console.log(JSON.stringify(result));
