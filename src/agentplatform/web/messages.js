/**
 * Chat message elements: a person's message (plain text, as typed) and an agent's reply, with
 * the reply's state — writing, stopped, failed, interrupted.
 *
 * A reply is a list of parts, as the server stores them: text (safe Markdown) and the tool
 * steps between, each a `tool_call` and, once it came back, its `tool_result` (matched by
 * `call_id`). The same parts come from history or are built from a run's events one by one
 * (`addEvent`), and `setParts` paints either the same way. Repainting keeps the elements that
 * did not change: a tool step a person opened stays open while the answer streams on. Tool
 * names, arguments and results are server text: they only ever go in as `textContent`.
 */

import { append, h } from './dom.js';
import { t, toolLabel } from './i18n.js';
import { icon, paintAvatar } from './icons.js';
import { renderMarkdown } from './markdown.js';

const painted = new WeakMap(); // segment element → [key, what it shows, segment]
const pendingTool = new WeakMap(); // reply element → name of the tool it waits for, if any

export function userMessage(content, id) {
  return h(
    'li',
    { class: 'msg user', 'data-id': id },
    h('p', { class: 'sr-only', text: t('you') }),
    h('div', { class: 'bubble', text: content }),
    h('p', { class: 'msg-status' }),
  );
}

/** `parts`: a reply's parts (see `partsOf`). */
export function assistantMessage(agent, parts, status, id) {
  const avatar = paintAvatar(h('span', { class: 'avatar small', 'aria-hidden': 'true' }), agent);
  const li = h(
    'li',
    { class: 'msg assistant', 'data-id': id },
    avatar,
    h(
      'div',
      { class: 'msg-main' },
      h('p', { class: 'sr-only', text: agent.name }),
      h('div', { class: 'bubble md' }),
      h('p', { class: 'msg-status' }),
    ),
  );
  setParts(li, parts);
  setStatus(li, status);
  return li;
}

/** The parts of a stored message: its `parts` when it used tools, else its text. */
export function partsOf(message) {
  if (Array.isArray(message.parts) && message.parts.length) return structuredClone(message.parts);
  return message.content ? [{ type: 'text', text: message.content }] : [];
}

/** Adds one run event (`delta`, `tool_call`, `tool_result`) to `parts`, as the server does. */
export function addEvent(parts, frame) {
  if (frame.type === 'delta') {
    const last = parts[parts.length - 1];
    if (last?.type === 'text') last.text += frame.text;
    else parts.push({ type: 'text', text: frame.text });
  } else if (frame.type === 'tool_call') {
    parts.push({ type: 'tool_call', call_id: frame.call_id, name: frame.name, arguments: frame.arguments });
  } else if (frame.type === 'tool_result') {
    const { call_id, name, content, is_error } = frame;
    parts.push({ type: 'tool_result', call_id, name, content, is_error });
  }
  return parts;
}

/** The text of `parts` (what the server keeps as the message's `content`). */
export const textOf = (parts) => parts.filter((p) => p.type === 'text').map((p) => p.text).join('');

/** Text runs and tool steps, in order; a result joins its call. */
function segments(parts) {
  const out = [];
  const calls = new Map();
  for (const part of parts) {
    if (part.type === 'text') {
      const last = out[out.length - 1];
      if (!part.text) continue;
      if (last?.kind === 'text') last.text += part.text;
      else out.push({ kind: 'text', text: part.text });
    } else if (part.type === 'tool_call') {
      const step = { kind: 'tool', id: part.call_id, name: part.name, args: part.arguments, result: null };
      calls.set(part.call_id, step);
      out.push(step);
    } else if (part.type === 'tool_result') {
      const step = calls.get(part.call_id);
      if (step && !step.result) step.result = part;
      else out.push({ kind: 'tool', id: part.call_id, name: part.name, args: undefined, result: part });
    }
  }
  return out;
}

export function setContent(li, text) {
  setParts(li, text ? [{ type: 'text', text }] : []);
}

/** Paints `parts` into the reply's bubble, reusing the elements of unchanged segments. */
export function setParts(li, parts) {
  const bubble = li.querySelector('.bubble');
  const segs = segments(parts);
  const kids = [...bubble.children];
  segs.forEach((seg, i) => {
    const key = seg.kind === 'text' ? 'text' : `tool ${seg.id}`;
    let el = kids[i];
    if (!el || painted.get(el)?.[0] !== key) {
      const fresh = seg.kind === 'text' ? h('div', { class: 'seg' }) : toolStep();
      if (el) el.replaceWith(fresh);
      else bubble.append(fresh);
      el = fresh;
    }
    const shows = seg.kind === 'text' ? seg.text : JSON.stringify([seg.name, seg.args, seg.result]);
    if (painted.get(el)?.[1] === shows) return;
    painted.set(el, [key, shows, seg]);
    if (seg.kind === 'text') el.replaceChildren(renderMarkdown(seg.text));
    else fillStep(el, seg);
  });
  for (const extra of kids.slice(segs.length)) extra.remove();
  const waiting = segs.filter((s) => s.kind === 'tool' && !s.result).pop();
  pendingTool.set(li, waiting ? waiting.name : null);
  if (li.classList.contains('streaming')) setStatus(li, 'streaming');
}

/** A tool step: folded, its summary says which tool; open, its arguments and result. */
function toolStep() {
  return h('details', { class: 'tool-step' }, h('summary'), h('div', { class: 'tool-body' }));
}

/** Replaces `el`'s children (`null`s left out, arrays flattened, strings as text). */
function refill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

function pretty(value) {
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}

function fillStep(el, step) {
  const done = Boolean(step.result);
  const failed = done && Boolean(step.result.is_error);
  const name = toolLabel(step.name);
  el.classList.toggle('running', !done);
  el.classList.toggle('error', failed);
  refill(
    el.querySelector('summary'),
    done ? icon(failed ? 'alert' : 'tool', 15) : h('span', { class: 'tool-spin', 'aria-hidden': 'true' }),
    h('span', { class: 'tool-title', text: t(done ? 'toolUsed' : 'usingTool', { name }) }),
    failed ? [' ', h('span', { class: 'tool-error', text: t('toolError') })] : null,
  );
  refill(
    el.querySelector('.tool-body'),
    step.args === undefined ? null : h('div', { class: 'tool-label', text: t('toolArguments') }),
    step.args === undefined ? null : h('pre', { class: 'tool-args', text: pretty(step.args) }),
    h('div', { class: 'tool-label', text: t('toolResult') }),
    done
      ? h('pre', { class: 'tool-result', text: String(step.result.content ?? '') })
      : h('div', { class: 'tool-wait', text: t('toolWaiting') }),
  );
}

/** Relabels the tool steps and notes of the replies under `root` (after a language switch). */
export function relabelReplies(root) {
  for (const el of root.querySelectorAll('.tool-step')) {
    const seg = painted.get(el)?.[2];
    if (seg) fillStep(el, seg);
  }
  for (const li of root.querySelectorAll('.msg.assistant.streaming')) setStatus(li, 'streaming');
}

const NOTES = { cancelled: 'stopped', interrupted: 'interrupted', failed: 'failed' };

/** `status`: a message status (`streaming`, `complete`, `cancelled`, `failed`, `interrupted`). */
export function setStatus(li, status, detail = '') {
  const streaming = status === 'streaming';
  li.classList.toggle('streaming', streaming);
  li.classList.toggle('failed', status === 'failed' || status === 'interrupted');
  li.querySelector('.bubble').setAttribute('aria-busy', String(streaming));
  const note = li.querySelector('.msg-status');
  const tool = pendingTool.get(li);
  if (streaming) note.textContent = tool ? t('usingTool', { name: toolLabel(tool) }) : t('writing');
  else note.textContent = NOTES[status] ? t(NOTES[status], { msg: detail || status }) : '';
}

/** Marks a person's message that the server refused. */
export function setNotSent(li, detail) {
  li.classList.add('failed');
  li.querySelector('.msg-status').textContent = t('notSent', { msg: detail });
}
