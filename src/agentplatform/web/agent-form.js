/**
 * The create / edit modal of an agent. Checks the same rules as the server before sending;
 * when the server still refuses (422), its messages are shown next to the fields they name
 * (`details[].loc = ["body", field, …]`).
 *
 * Tools are checkboxes from `GET /api/tools` (read when the form first opens): one the server
 * reports unavailable is disabled, its reason as its hint — unless the agent already has it,
 * so that it can still be removed; so can a tool the server no longer offers at all.
 */

import { ApiError, api } from './api.js';
import { errorText } from './dialogs.js';
import { byId, h } from './dom.js';
import { t, tMaybe, toolLabel } from './i18n.js';
import { AGENT_ICONS, paintAvatar } from './icons.js';
import { validateAgent } from './validate.js';

const FIELDS = ['name', 'description', 'tags', 'color', 'icon', 'model', 'temperature', 'tools', 'max_steps', 'instructions'];
const PROVIDERS = { anthropic: 'Anthropic', openai: 'OpenAI', local: 'Local' };
const DEFAULTS = {
  name: '', description: '', tags: [], color: '#6366F1', icon: 'robot', instructions: '', temperature: 0.7, tools: [], max_steps: 8,
};

export class AgentForm {
  constructor({ onSaved }) {
    this.onSaved = onSaved;
    this.dialog = byId('agent-dialog');
    this.form = byId('agent-form');
    this.submitBtn = byId('agent-submit');
    this.formError = byId('form-error');
    this.inputs = Object.fromEntries(FIELDS.map((f) => [f, byId(`f-${f}`)]));
    this.models = { items: [], default: null };
    this.tools = null; // GET /api/tools items, once read
    this.toolsError = null;
    this.toolList = byId('tool-list');
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
    this.inputs.max_steps.value = String(values.max_steps ?? DEFAULTS.max_steps);
    this.fillTools(values.tools || []);
    if (this.tools === null) this.loadTools();
    this.fillModels(agent?.model || null);
    for (const field of FIELDS) this.fieldError(field, null);
    this.formError.hidden = true;
    this.preview();
    this.dialog.showModal();
    this.inputs.name.focus();
  }

  async loadTools() {
    if (this.loadingTools) return;
    this.loadingTools = true;
    this.fillTools(this.selectedTools());
    try {
      this.tools = (await api('GET', '/api/tools')).items;
      this.toolsError = null;
    } catch (err) {
      this.toolsError = errorText(err);
    } finally {
      this.loadingTools = false;
    }
    this.fillTools(this.selectedTools());
  }

  /** The checkboxes, with `selected` checked; names the server does not list are kept. */
  fillTools(selected) {
    const offered = this.tools || [];
    const names = new Set(offered.map((tool) => tool.name));
    const missing = selected.filter((name) => !names.has(name));
    const items = [...offered, ...missing.map((name) => ({ name, description: '', available: this.tools === null, gone: this.tools !== null }))];
    this.toolList.replaceChildren(...items.map((tool, i) => this.toolOption(tool, i, selected.includes(tool.name))));
    const status = byId('tools-status');
    status.textContent = this.loadingTools
      ? t('toolsLoading')
      : this.toolsError
        ? t('toolsFailed', { msg: this.toolsError })
        : items.length ? '' : t('noTools');
    status.hidden = !status.textContent;
  }

  toolOption(tool, i, checked) {
    const id = `f-tool-${i}`;
    const label = toolLabel(tool.name);
    const description = tMaybe(`toolDesc:${tool.name}`) ?? tool.description;
    let note = null;
    if (tool.gone) note = t('toolGone');
    else if (!tool.available) note = t('toolUnavailable', { reason: tool.reason || '—' });
    const disabled = !tool.available && !checked && !tool.gone; // what an agent has stays removable
    return h(
      'li',
      { class: `tool-option${disabled ? ' disabled' : ''}` },
      h('input', { type: 'checkbox', id, value: tool.name, checked, disabled, 'aria-describedby': `${id}-hint` }),
      h(
        'label',
        { for: id },
        h('span', { class: 'tool-name', text: label }),
        label === tool.name ? null : [' ', h('code', { class: 'tool-code', text: tool.name })],
      ),
      h(
        'p',
        { id: `${id}-hint`, class: 'hint tool-hint' },
        note ? h('span', { class: 'tool-note', text: note }) : null,
        description ? h('span', { class: 'tool-desc', text: description, title: description }) : null,
      ),
    );
  }

  /** The checked tools: the agent's own first, in its order, then the newly checked ones. */
  selectedTools() {
    const checked = [...this.toolList.querySelectorAll('input:checked')].map((el) => el.value);
    const kept = (this.agent?.tools || []).filter((name) => checked.includes(name));
    return [...kept, ...checked.filter((name) => !kept.includes(name))];
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
      const input = this.inputs[first];
      const target = first === 'tools' ? input.querySelector('input:not(:disabled)') || input : input;
      target.focus({ preventScroll: true });
      input.closest('.field').scrollIntoView({ block: 'nearest' });
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
    raw.tools = this.selectedTools();
    // Names the server does not offer are refused only when they would be sent.
    const sent = JSON.stringify(raw.tools) !== JSON.stringify(this.agent?.tools);
    const known = this.tools && sent ? new Set(this.tools.map((tool) => tool.name)) : null;
    const { body, errors } = validateAgent(raw, known);
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
