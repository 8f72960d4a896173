/**
 * Small modal questions (confirm, ask for a line of text) on native `<dialog>` elements, and
 * passing notices (toasts). Native dialogs keep focus inside while open, close on Escape and
 * give focus back to the control that opened them.
 */

import { byId, h } from './dom.js';
import { t } from './i18n.js';

function ask(dialog, setup) {
  return new Promise((resolve) => {
    const form = dialog.querySelector('form');
    const cancel = dialog.querySelector('[data-cancel]');
    const opener = document.activeElement;
    const done = (value) => {
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('close', onClose);
      if (dialog.open) dialog.close();
      opener?.focus?.();
      resolve(value);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      done(setup.value());
    };
    const onCancel = () => done(null);
    const onClose = () => done(null);
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    setup.focus();
  });
}

/** Resolves true when the person confirms. */
export async function confirmAction({ title, body, action }) {
  const dialog = byId('confirm-dialog');
  byId('confirm-title').textContent = title;
  byId('confirm-body').textContent = body;
  const ok = byId('confirm-ok');
  ok.textContent = action;
  const answer = await ask(dialog, { value: () => true, focus: () => dialog.querySelector('[data-cancel]').focus() });
  return answer === true;
}

/** Resolves the trimmed text entered, or null when cancelled. */
export async function promptText({ title, label, value, maxLength }) {
  const dialog = byId('prompt-dialog');
  const input = byId('prompt-input');
  byId('prompt-title').textContent = title;
  byId('prompt-label').textContent = label;
  input.value = value || '';
  input.maxLength = maxLength || 200;
  const answer = await ask(dialog, {
    value: () => input.value.trim() || null,
    focus: () => input.select(),
  });
  return answer;
}

/** A notice that goes away by itself; `kind` is 'ok' or 'error'. */
export function toast(text, kind = 'ok') {
  const box = byId('toasts');
  const item = h('p', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : null, text });
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

export const errorText = (err) => (err?.code === 'network' ? t('networkError') : err?.message || String(err));
