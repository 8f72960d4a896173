/**
 * The chat pane of one agent: history (paged, older pages on scroll-up or a button), the
 * composer (Enter sends, Shift+Enter adds a line, Stop cancels), and replies streamed from the
 * socket. A reply in progress is a "view" keyed by its run: it survives switching
 * conversations and reconnects, and is re-attached when its conversation is shown again.
 * A view holds the reply's parts (text and tool steps), built from the run's events in `seq`
 * order. A reply history shows as still being written (after a reload, say) is followed over
 * the socket too: `resume` from the start of its run, never by polling the history.
 */

import { api } from './api.js';
import { ConversationPanel } from './conversations.js';
import { errorText, toast } from './dialogs.js';
import { byId, nearBottom, randomId } from './dom.js';
import { t } from './i18n.js';
import { paintAvatar } from './icons.js';
import {
  addEvent,
  assistantMessage,
  partsOf,
  relabelReplies,
  setNotSent,
  setParts,
  setStatus,
  textOf,
  userMessage,
} from './messages.js';
import { setPref } from './prefs.js';

const PAGE = 30;
const MAX_CHARS = 32000;
const RUN_EVENTS = new Set(['delta', 'tool_call', 'tool_result']);

export class ChatPane {
  constructor({ socket, modelLabel, onRunEnded, onClosed }) {
    this.socket = socket;
    this.modelLabel = modelLabel;
    this.onRunEnded = onRunEnded;
    this.onClosed = onClosed;
    this.agent = null;
    this.conversationId = null;
    this.cursor = null;
    this.loadToken = 0;
    this.views = new Map(); // run_id → reply in progress
    this.unacked = new Map(); // client_msg_id → reply waiting for its ack
    this.el = byId('chat');
    this.log = byId('log');
    this.list = byId('messages');
    this.hello = byId('chat-hello');
    this.older = byId('load-older');
    this.input = byId('message');
    this.sendBtn = byId('send');
    this.stopBtn = byId('stop');
    this.conversations = new ConversationPanel({
      onOpen: (id) => this.show(id),
      onDeleted: () => this.show(null),
    });
    this.bind();
  }

  bind() {
    byId('composer').addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener('input', () => this.autosize());
    this.stopBtn.addEventListener('click', () => this.stop());
    byId('chat-back').addEventListener('click', () => this.close());
    byId('convo-new').addEventListener('click', () => {
      this.conversations.show(false);
      this.show(null);
      this.input.focus();
    });
    this.older.addEventListener('click', () => this.loadOlder());
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadOlder();
    }, { root: this.log }).observe(this.older);
  }

  get isOpen() {
    return this.agent !== null;
  }

  async open(agent) {
    this.agent = agent;
    this.el.hidden = false;
    document.body.classList.add('chat-open');
    this.paintHeader();
    setPref('lastAgent', agent.id);
    this.conversations.show(false);
    this.conversations.items = [];
    await this.show(null);
    // Not on touch screens, where focusing would pop the keyboard over the history.
    if (matchMedia('(pointer: fine)').matches) this.input.focus({ preventScroll: true });
    try {
      await this.conversations.load(agent.id);
      const latest = this.conversations.items[0];
      if (latest && this.agent === agent && this.conversationId === null && !this.busy()) {
        await this.show(latest.id);
      }
    } catch (err) {
      toast(t('error', { msg: errorText(err) }), 'error');
    }
  }

  /** The agent changed (edited, or new run counts): repaint what shows it. */
  updateAgent(agent) {
    if (this.agent?.id !== agent.id) return;
    this.agent = agent;
    this.paintHeader();
  }

  paintHeader() {
    const agent = this.agent;
    if (!agent) return;
    paintAvatar(byId('chat-icon'), agent);
    byId('chat-title').textContent = agent.name;
    byId('chat-model').textContent = this.modelLabel(agent.model);
    this.input.placeholder = t('messagePlaceholder', { name: agent.name });
    this.hello.textContent = t('hello', { name: agent.name });
  }

  close() {
    const id = this.agent?.id;
    this.agent = null;
    this.el.hidden = true;
    document.body.classList.remove('chat-open');
    setPref('lastAgent', null);
    this.onClosed(id);
  }

  async show(conversationId) {
    const token = ++this.loadToken;
    this.conversationId = conversationId;
    this.cursor = null;
    this.list.replaceChildren();
    this.hello.hidden = conversationId !== null;
    this.conversations.setCurrent(conversationId);
    this.updateOlder();
    if (conversationId === null) {
      for (const view of this.unacked.values()) if (view.agentId === this.agent?.id) this.attachPending(view);
      this.refreshComposer();
      return;
    }
    try {
      const page = await api('GET', `${this.messagesPath(conversationId)}?limit=${PAGE}`);
      if (token !== this.loadToken) return;
      this.list.replaceChildren(...page.items.map((m) => this.messageEl(m)));
      this.attachInFlight(conversationId, new Set(page.items.map((m) => m.id)));
      this.cursor = page.next_cursor;
      this.hello.hidden = this.list.childElementCount > 0;
      this.log.scrollTop = this.log.scrollHeight;
    } catch (err) {
      if (token === this.loadToken) toast(t('error', { msg: errorText(err) }), 'error');
    }
    this.updateOlder();
    this.refreshComposer();
  }

  /** Turns sent while the history was loading, which that history does not hold yet. */
  attachInFlight(conversationId, loaded) {
    for (const view of [...this.unacked.values(), ...this.views.values()]) {
      if (view.agentId !== this.agent?.id || view.conversationId !== conversationId) continue;
      if (view.assistantId && loaded.has(view.assistantId)) continue; // re-attached by messageEl
      if (view.userEl && !loaded.has(view.userEl.dataset.id)) this.list.append(view.userEl);
      this.list.append(view.el);
    }
  }

  attachPending(view) {
    this.hello.hidden = true;
    this.list.append(view.userEl, view.el);
  }

  messagesPath(conversationId) {
    return `/api/conversations/${encodeURIComponent(conversationId)}/messages`;
  }

  messageEl(message) {
    if (message.role === 'user') return userMessage(message.content, message.id);
    const live = [...this.views.values()].find((v) => v.assistantId === message.id);
    if (live) {
      const parts = this.behind(live) ? partsOf(message) : live.parts;
      live.el = assistantMessage(this.agent, parts, 'streaming', message.id);
      return live.el;
    }
    const el = assistantMessage(this.agent, partsOf(message), message.status, message.id);
    if (message.status === 'streaming' && message.run_id) this.resume(message, el);
    return el;
  }

  /**
   * A reply still being written that this page did not start (e.g. after a reload): its run
   * is followed over the socket from its first event. What history showed stays on screen
   * until the replayed events have caught up with it, so the text never shrinks or repeats.
   */
  resume(message, el) {
    const view = {
      agentId: this.agent.id,
      conversationId: message.conversation_id,
      runId: message.run_id,
      assistantId: message.id,
      parts: [],
      seq: 0,
      floor: message.content.length,
      userEl: null,
      el,
    };
    this.views.set(view.runId, view);
    this.socket.follow(view.runId, 0);
  }

  /** Whether a resumed view's replay is still short of what history already showed. */
  behind(view) {
    return view.floor > 0 && textOf(view.parts).length < view.floor;
  }

  updateOlder() {
    this.older.hidden = !this.cursor;
    this.older.disabled = Boolean(this.loadingOlder);
    this.older.textContent = t(this.loadingOlder ? 'loadingOlder' : 'loadOlder');
  }

  async loadOlder() {
    if (!this.cursor || this.loadingOlder || !this.conversationId) return;
    const token = this.loadToken;
    this.loadingOlder = true;
    this.updateOlder();
    try {
      const query = `?limit=${PAGE}&before=${encodeURIComponent(this.cursor)}`;
      const page = await api('GET', this.messagesPath(this.conversationId) + query);
      if (token !== this.loadToken) return;
      const height = this.log.scrollHeight;
      const top = this.log.scrollTop;
      this.list.prepend(...page.items.map((m) => this.messageEl(m)));
      this.log.scrollTop = top + (this.log.scrollHeight - height);
      this.cursor = page.next_cursor;
    } catch (err) {
      toast(t('error', { msg: errorText(err) }), 'error');
    } finally {
      this.loadingOlder = false;
      this.updateOlder();
    }
  }

  /** The reply in progress in the conversation on screen, if any. */
  busy() {
    const mine = (v) => v.agentId === this.agent?.id && v.conversationId === this.conversationId;
    return [...this.unacked.values(), ...this.views.values()].find(mine) || null;
  }

  refreshComposer() {
    const busy = Boolean(this.busy());
    this.stopBtn.hidden = !busy;
    this.sendBtn.hidden = busy;
  }

  autosize() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 200)}px`;
  }

  send() {
    const content = this.input.value;
    if (!content.trim() || !this.agent || this.busy()) return;
    if (content.length > MAX_CHARS) {
      toast(t('vTooLong', { max: MAX_CHARS, n: content.length }), 'error');
      return;
    }
    const view = {
      clientMsgId: randomId(),
      agentId: this.agent.id,
      conversationId: this.conversationId,
      content,
      parts: [],
      seq: 0,
      runId: null,
      assistantId: null,
      userEl: userMessage(content, null),
      el: assistantMessage(this.agent, [], 'streaming', null),
    };
    this.unacked.set(view.clientMsgId, view);
    this.attachPending(view);
    this.input.value = '';
    this.autosize();
    this.refreshComposer();
    this.log.scrollTop = this.log.scrollHeight;
    const frame = { type: 'chat', agent_id: view.agentId, content, client_msg_id: view.clientMsgId };
    if (view.conversationId) frame.conversation_id = view.conversationId;
    this.socket.chat(frame);
  }

  stop() {
    const view = this.busy();
    if (!view) return;
    view.cancelRequested = true;
    if (view.runId) this.socket.cancel(view.runId);
  }

  /** Every frame from the socket (run events arrive once each, in order). */
  handleFrame(frame) {
    if (frame.type === 'ack') this.acked(frame);
    else if (RUN_EVENTS.has(frame.type) && frame.run_id) this.progress(frame);
    else if ((frame.type === 'done' || frame.type === 'error') && frame.run_id && 'seq' in frame) this.finish(frame);
    else if (frame.type === 'error' && frame.client_msg_id) this.refused(frame);
    else if (frame.type === 'error') toast(t('error', { msg: frame.message }), 'error');
  }

  acked(frame) {
    const view = this.unacked.get(frame.client_msg_id);
    if (!view) return;
    this.unacked.delete(frame.client_msg_id);
    Object.assign(view, {
      runId: frame.run_id,
      assistantId: frame.assistant_message_id,
      conversationId: frame.conversation_id,
    });
    this.views.set(view.runId, view);
    view.userEl.dataset.id = frame.message_id;
    view.el.dataset.id = frame.assistant_message_id;
    // A history page read while this turn was in flight may already show it: keep one copy.
    for (const id of [frame.message_id, frame.assistant_message_id]) {
      for (const el of this.list.querySelectorAll(`[data-id="${CSS.escape(id)}"]`)) {
        if (el !== view.userEl && el !== view.el) el.remove();
      }
    }
    if (view.cancelRequested) this.socket.cancel(view.runId);
    if (this.agent?.id !== view.agentId) return;
    if (this.conversationId === null && view.el.isConnected) {
      this.conversationId = frame.conversation_id;
      this.loadToken += 1; // a history load for "no conversation" is now stale
    }
    this.conversations.load(view.agentId).then(() => this.conversations.setCurrent(this.conversationId), () => {});
  }

  /** A text delta, a tool call or a tool result: added to the reply's parts once, in order. */
  progress(frame) {
    const view = this.views.get(frame.run_id);
    if (!view || frame.seq <= view.seq) return;
    view.seq = frame.seq;
    addEvent(view.parts, frame);
    if (view.frame) return; // one repaint per animation frame, however many events
    view.frame = requestAnimationFrame(() => {
      view.frame = null;
      if (!view.el.isConnected || this.behind(view)) return;
      view.floor = 0;
      const stick = nearBottom(this.log);
      setParts(view.el, view.parts);
      if (stick) this.log.scrollTop = this.log.scrollHeight;
    });
  }

  async finish(frame) {
    const view = this.views.get(frame.run_id);
    if (!view) return;
    this.views.delete(frame.run_id);
    if (view.frame) cancelAnimationFrame(view.frame);
    view.frame = null;
    if (frame.gap) {
      // Events were missed (the server rebuilt the end from storage): read the final reply.
      try {
        const page = await api('GET', `${this.messagesPath(view.conversationId)}?limit=5`);
        const message = page.items.find((m) => m.id === view.assistantId);
        if (message) {
          view.parts = partsOf(message);
          view.floor = 0;
        }
      } catch {
        // keep what was streamed
      }
    }
    const status = frame.type === 'done' ? (frame.status === 'completed' ? 'complete' : 'cancelled') : frame.status;
    const stick = nearBottom(this.log);
    if (!this.behind(view)) setParts(view.el, view.parts);
    setStatus(view.el, status, frame.message);
    if (stick && view.el.isConnected) this.log.scrollTop = this.log.scrollHeight;
    this.refreshComposer();
    this.onRunEnded(view.agentId);
  }

  refused(frame) {
    const view = this.unacked.get(frame.client_msg_id);
    if (!view) return;
    this.unacked.delete(frame.client_msg_id);
    view.el.remove();
    setNotSent(view.userEl, frame.message);
    if (!this.input.value) this.input.value = view.content;
    this.refreshComposer();
  }

  /** Shows the connection's state inside the pane. */
  showConnection(state) {
    const box = byId('conn');
    const text = { reconnecting: t('reconnecting'), offline: t('offline') }[state];
    box.hidden = !text;
    box.textContent = text || '';
  }

  relabel() {
    this.paintHeader();
    this.updateOlder();
    relabelReplies(this.list);
  }
}
