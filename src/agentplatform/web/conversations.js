/**
 * The conversation list of the agent in the chat pane: open one, start a new one, rename or
 * delete one (after confirmation). Most recently active first, as the server lists them.
 */

import { api, listAll } from './api.js';
import { confirmAction, errorText, promptText, toast } from './dialogs.js';
import { byId, h } from './dom.js';
import { formatTime, t } from './i18n.js';
import { icon } from './icons.js';

export class ConversationPanel {
  constructor({ onOpen, onDeleted }) {
    this.onOpen = onOpen;
    this.onDeleted = onDeleted;
    this.panel = byId('convo-panel');
    this.list = byId('convo-list');
    this.empty = byId('convo-empty');
    this.toggle = byId('convo-toggle');
    this.items = [];
    this.current = null;
    this.agentId = null;
    this.toggle.addEventListener('click', () => this.show(this.panel.hidden));
    this.panel.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape') return;
      this.show(false);
      this.toggle.focus();
    });
  }

  show(open) {
    this.panel.hidden = !open;
    this.toggle.setAttribute('aria-expanded', String(open));
    if (open) (this.list.querySelector('[aria-current="true"]') || this.list.querySelector('button'))?.focus();
  }

  async load(agentId) {
    this.agentId = agentId;
    const items = await listAll(`/api/conversations?agent_id=${encodeURIComponent(agentId)}&limit=100`, 1);
    if (this.agentId !== agentId) return;
    this.items = items;
    this.render();
  }

  setCurrent(id) {
    this.current = id;
    this.render();
  }

  render() {
    this.empty.hidden = this.items.length > 0;
    this.list.replaceChildren(...this.items.map((c) => this.item(c)));
  }

  item(c) {
    const title = c.title || t('untitled');
    const open = h(
      'button',
      {
        class: 'convo-open',
        type: 'button',
        'aria-current': c.id === this.current ? 'true' : null,
        on: {
          click: () => {
            this.show(false);
            this.onOpen(c.id);
          },
        },
      },
      h('span', { class: 'convo-title', text: title }),
      h('span', { class: 'convo-time', text: formatTime(c.updated_at) }),
    );
    const rename = h(
      'button',
      { class: 'icon-btn', type: 'button', 'aria-label': t('renameConversation', { title }), title: t('rename'), on: { click: () => this.rename(c) } },
      icon('edit', 16),
    );
    const remove = h(
      'button',
      { class: 'icon-btn danger', type: 'button', 'aria-label': t('deleteConversation', { title }), title: t('delete'), on: { click: () => this.remove(c) } },
      icon('trash', 16),
    );
    return h('li', { class: 'convo', 'data-id': c.id }, open, rename, remove);
  }

  async rename(c) {
    const title = await promptText({ title: t('renameTitle'), label: t('titleLabel'), value: c.title, maxLength: 200 });
    if (!title || title === c.title) return;
    try {
      Object.assign(c, await api('PATCH', `/api/conversations/${encodeURIComponent(c.id)}`, { title }));
      this.render();
    } catch (err) {
      toast(t('error', { msg: errorText(err) }), 'error');
    }
  }

  async remove(c) {
    const title = c.title || t('untitled');
    const sure = await confirmAction({
      title: t('confirmDeleteConversationTitle'),
      body: t('confirmDeleteConversation', { title }),
      action: t('delete'),
    });
    if (!sure) return;
    try {
      await api('DELETE', `/api/conversations/${encodeURIComponent(c.id)}`);
      this.items = this.items.filter((x) => x.id !== c.id);
      this.render();
      if (c.id === this.current) this.onDeleted();
    } catch (err) {
      toast(t('error', { msg: errorText(err) }), 'error');
    }
  }
}
