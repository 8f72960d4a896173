/**
 * The create / edit modal of an agent. Checks the same rules as the server before sending;
 * when the server still refuses (422), its messages are shown next to the fields they name
 * (`details[].loc = ["body", field, …]`).
 */

import { ApiError, api } from './api.js';
import { errorText } from './dialogs.js';
import { byId, h } from './dom.js';
import { t } from './i18n.js';
import { AGENT_ICONS, paintAvatar } from './icons.js';
import { validateAgent } from './validate.js';

const FIELDS = ['name', 'description', 'tags', 'color', 'icon', 'instructions', 'model', 'temperature'];
const PROVIDERS = { anthropic: 'Anthropic', openai: 'OpenAI', local: 'Local' };
const DEFAULTS = { name: '', description: '', tags: [], color: '#6366F1', icon: 'robot', instructions: '', temperature: 0.7 };

export class AgentForm {
  constructor({ onSaved }) {
    this.onSaved = onSaved;
    this.dialog = byId('agent-dialog');
    this.form = byId('agent-form');
    this.submitBtn = byId('agent-submit');
    this.formError = byId('form-error');
    this.inputs = Object.fromEntries(FIELDS.map((f) => [f, byId(`f-${f}`)]));
    this.models = { items: [], default: null };
    this.agent = null;
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    for (const el of this.dialog.querySelectorAll('[data-close]')) el.addEventListener('click', () => this.dialog.close());
    for (const [field, el] of Object.entries(this.inputs)) el.addEventListener('input', () => this.fieldError(field, null));
    const picker = byId('f-color-pick');
    picker.addEventListener('input', () => {
      this.inputs.color.value = picker.value.toUpperCase();
      this.fieldError('color', null);
      this.preview();
    });
    this.inputs.color.addEventListener('input', () => {
      if (/^#[0-9A-Fa-f]{6}$/.test(this.inputs.color.value)) picker.value = this.inputs.color.value.toLowerCase();
      this.preview();
    });
    this.inputs.icon.addEventListener('input', () => this.preview());
    this.inputs.name.addEventListener('input', () => this.preview());
    byId('icon-names').replaceChildren(...Object.keys(AGENT_ICONS).map((name) => h('option', { value: name })));
    this.dialog.addEventListener('close', () => {
      if (this.opener?.isConnected) this.opener.focus();
    });
  }

  setModels(models) {
    this.models = models;
  }

  fillModels(selected) {
    const select = this.inputs.model;
    const groups = new Map();
    for (const m of this.models.items) {
      const group = m.offline_demo ? t('offlineDemo') : PROVIDERS[m.provider] || m.provider;
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push(h('option', { value: m.id, text: m.offline_demo ? `${m.label} · ${t('offlineDemo')}` : m.label }));
    }
    const known = this.models.items.some((m) => m.id === selected);
    select.replaceChildren(
      this.models.items.length ? null : h('option', { value: '', text: t('serverDefault') }),
      selected && !known ? h('option', { value: selected, text: selected }) : null,
      ...[...groups].map(([label, options]) => h('optgroup', { label }, options)),
    );
    select.value = selected || this.models.default || select.options[0]?.value || '';
  }

  open(agent = null) {
    this.opener = document.activeElement;
    this.agent = agent;
    const values = agent || DEFAULTS;
    byId('agent-dialog-title').textContent = t(agent ? 'editTitle' : 'createTitle');
    this.submitBtn.textContent = t(agent ? 'save' : 'create');
    this.submitBtn.disabled = false;
    this.inputs.name.value = values.name;
    this.inputs.description.value = values.description;
    this.inputs.tags.value = values.tags.join(', ');
    this.inputs.color.value = values.color.toUpperCase();
    byId('f-color-pick').value = values.color.toLowerCase();
    this.inputs.icon.value = values.icon;
    this.inputs.instructions.value = values.instructions;
    this.inputs.temperature.value = String(values.temperature);
    this.fillModels(agent?.model || null);
    for (const field of FIELDS) this.fieldError(field, null);
    this.formError.hidden = true;
    this.preview();
    this.dialog.showModal();
    this.inputs.name.focus();
  }

  preview() {
    paintAvatar(byId('f-icon-preview'), {
      icon: this.inputs.icon.value.trim(),
      color: this.inputs.color.value.trim(),
      name: this.inputs.name.value,
    });
  }

  fieldError(field, message) {
    const input = this.inputs[field];
    const box = byId(`err-${field}`);
    if (!input || !box) return;
    box.textContent = message || '';
    box.hidden = !message;
    input.closest('.field').classList.toggle('invalid', Boolean(message));
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }

  showErrors(errors) {
    const fields = Object.keys(errors);
    for (const field of FIELDS) this.fieldError(field, errors[field] || null);
    this.formError.textContent = t('vFix');
    this.formError.hidden = fields.length === 0;
    const first = FIELDS.find((f) => errors[f]);
    if (first) {
      this.inputs[first].focus({ preventScroll: true });
      this.inputs[first].closest('.field').scrollIntoView({ block: 'nearest' });
    }
  }

  /** Only what changed when editing, so an untouched field is never re-validated. */
  changes(body) {
    if (!this.agent) return body;
    const out = {};
    for (const [key, value] of Object.entries(body)) {
      if (JSON.stringify(value) !== JSON.stringify(this.agent[key])) out[key] = value;
    }
    return out;
  }

  async submit() {
    const raw = Object.fromEntries(FIELDS.map((f) => [f, this.inputs[f].value]));
    const { body, errors } = validateAgent(raw);
    if (Object.keys(errors).length) {
      this.showErrors(Object.fromEntries(Object.entries(errors).map(([f, [key, vars]]) => [f, t(key, vars)])));
      return;
    }
    this.showErrors({});
    this.submitBtn.disabled = true;
    this.submitBtn.textContent = t('saving');
    const isNew = !this.agent;
    try {
      const saved = isNew
        ? await api('POST', '/api/agents', body)
        : await api('PATCH', `/api/agents/${encodeURIComponent(this.agent.id)}`, this.changes(body));
      this.opener = null; // focus goes to the saved agent's card instead
      this.dialog.close();
      this.onSaved(saved, isNew);
    } catch (err) {
      this.serverErrors(err);
    } finally {
      this.submitBtn.disabled = false;
      this.submitBtn.textContent = t(isNew ? 'create' : 'save');
    }
  }

  serverErrors(err) {
    const errors = {};
    const loose = [];
    if (err instanceof ApiError && Array.isArray(err.details)) {
      for (const detail of err.details) {
        const [where, field] = detail.loc || [];
        const message = String(detail.msg || err.message).replace(/^Value error, /, '');
        if (where === 'body' && FIELDS.includes(field) && !errors[field]) errors[field] = t('vServer', { msg: message });
        else loose.push(message);
      }
    }
    this.showErrors(errors);
    if (loose.length || !Object.keys(errors).length) {
      this.formError.textContent = t('error', { msg: loose.join(' ') || errorText(err) });
      this.formError.hidden = false;
    }
  }
}
