/**
 * Chat message elements: a person's message (plain text, as typed) and an agent's reply
 * (safe Markdown), with the reply's state — writing, stopped, failed, interrupted.
 */

import { h } from './dom.js';
import { t } from './i18n.js';
import { paintAvatar } from './icons.js';
import { renderMarkdown } from './markdown.js';

export function userMessage(content, id) {
  return h(
    'li',
    { class: 'msg user', 'data-id': id },
    h('p', { class: 'sr-only', text: t('you') }),
    h('div', { class: 'bubble', text: content }),
    h('p', { class: 'msg-status' }),
  );
}

export function assistantMessage(agent, content, status, id) {
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
  setContent(li, content);
  setStatus(li, status);
  return li;
}

export function setContent(li, text) {
  li.querySelector('.bubble').replaceChildren(renderMarkdown(text));
}

const NOTES = { cancelled: 'stopped', interrupted: 'interrupted', failed: 'failed' };

/** `status`: a message status (`streaming`, `complete`, `cancelled`, `failed`, `interrupted`). */
export function setStatus(li, status, detail = '') {
  const streaming = status === 'streaming';
  li.classList.toggle('streaming', streaming);
  li.classList.toggle('failed', status === 'failed' || status === 'interrupted');
  li.querySelector('.bubble').setAttribute('aria-busy', String(streaming));
  const note = li.querySelector('.msg-status');
  note.textContent = NOTES[status] ? t(NOTES[status], { msg: detail || status }) : streaming ? t('writing') : '';
}

/** Marks a person's message that the server refused. */
export function setNotSent(li, detail) {
  li.classList.add('failed');
  li.querySelector('.msg-status').textContent = t('notSent', { msg: detail });
}
