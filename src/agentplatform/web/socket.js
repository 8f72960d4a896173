/**
 * The chat WebSocket (`/ws`, authenticated by the session cookie), kept open for the page.
 *
 * It reconnects by itself with a growing, jittered delay and reports its state
 * (`connecting`, `open`, `reconnecting`, `offline`). A `chat` frame stays pending until its
 * `ack` and is sent again after a reconnect (same `client_msg_id`, so the server never runs it
 * twice). Every run in progress is resumed after a reconnect with the last `seq` delivered, and
 * run events are de-duplicated by `seq`: each reaches `onFrame` exactly once, in order.
 */

const PING_EVERY = 25000;
const PONG_WITHIN = 10000;
const MAX_DELAY = 10000;

export class ChatSocket {
  constructor({ url, onFrame, onState, onTrouble }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onState = onState;
    this.onTrouble = onTrouble; // called after repeated failures, e.g. to check the session
    this.ws = null;
    this.state = 'idle';
    this.failures = 0;
    this.pending = new Map(); // client_msg_id → chat frame, until acked
    this.runs = new Map(); // run_id → last seq delivered
    this.cancels = new Set(); // run_ids to cancel once connected
    this.timer = null;
    window.addEventListener('online', () => this.state !== 'open' && this.reconnectNow());
    window.addEventListener('offline', () => this.state !== 'open' && this.setState('offline'));
  }

  connect() {
    if (this.ws) return;
    clearTimeout(this.timer);
    this.setState(this.failures ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener('message', (event) => this.receive(event.data));
    ws.addEventListener('close', () => this.closed(ws));
  }

  reconnectNow() {
    this.failures = Math.max(this.failures, 1);
    if (this.ws) this.ws.close();
    else this.connect();
  }

  /** Sends a chat turn; it is delivered at least once and run at most once. */
  chat(frame) {
    this.pending.set(frame.client_msg_id, frame);
    this.connect();
    this.send(frame);
  }

  cancel(runId) {
    this.cancels.add(runId);
    this.send({ type: 'cancel', run_id: runId });
  }

  /** Follows a run this page did not start (e.g. one still going after a reload). */
  follow(runId, afterSeq = 0) {
    if (!this.runs.has(runId)) this.runs.set(runId, afterSeq);
    this.connect();
    this.send({ type: 'resume', run_id: runId, after_seq: this.runs.get(runId) });
  }

  send(frame) {
    if (this.state !== 'open') return false; // sent again on `welcome`
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    switch (frame.type) {
      case 'welcome':
        this.opened();
        break;
      case 'pong':
        this.lastPong = Date.now();
        break;
      case 'reconnect':
        this.reconnectNow();
        break;
      case 'ack':
        this.pending.delete(frame.client_msg_id);
        if (!this.runs.has(frame.run_id)) this.runs.set(frame.run_id, 0);
        this.onFrame(frame);
        if (this.cancels.has(frame.run_id)) this.send({ type: 'cancel', run_id: frame.run_id });
        break;
      default:
        if (typeof frame.seq === 'number' && frame.run_id) this.runEvent(frame);
        else this.frameError(frame);
    }
  }

  runEvent(frame) {
    const last = this.runs.get(frame.run_id);
    if (last === undefined || frame.seq <= last) return; // unknown run or already delivered
    const terminal = frame.type === 'done' || frame.type === 'error';
    this.runs.set(frame.run_id, frame.seq);
    if (terminal) {
      this.runs.delete(frame.run_id);
      this.cancels.delete(frame.run_id);
    }
    this.onFrame({ ...frame, gap: frame.seq !== last + 1 });
  }

  frameError(frame) {
    if (frame.type !== 'error') return;
    // A refused chat frame: the server names the frame kind, not the message; only one of
    // ours can be waiting at a time per conversation, so it is the oldest pending one.
    if (frame.details?.frame === 'chat' || frame.code === 'invalid_frame') {
      const [first] = this.pending.keys();
      if (first !== undefined) {
        this.pending.delete(first);
        this.onFrame({ ...frame, client_msg_id: first });
        return;
      }
    }
    this.onFrame(frame);
  }

  opened() {
    this.failures = 0;
    this.setState('open');
    for (const frame of this.pending.values()) this.send(frame);
    for (const [runId, seq] of this.runs) this.send({ type: 'resume', run_id: runId, after_seq: seq });
    for (const runId of this.cancels) this.send({ type: 'cancel', run_id: runId });
    this.lastPong = Date.now();
    clearInterval(this.pinger);
    this.pinger = setInterval(() => this.ping(), PING_EVERY);
  }

  ping() {
    if (Date.now() - this.lastPong > PING_EVERY + PONG_WITHIN) {
      this.ws?.close(); // no answer: the connection is dead even if the browser has not noticed
      return;
    }
    this.send({ type: 'ping' });
  }

  closed(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearInterval(this.pinger);
    this.failures += 1;
    if (this.failures % 3 === 0) this.onTrouble?.();
    this.setState(navigator.onLine === false ? 'offline' : 'reconnecting');
    const base = Math.min(MAX_DELAY, 250 * 2 ** (this.failures - 1));
    this.timer = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
  }
}
