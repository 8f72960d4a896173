/**
 * The agents as cards — icon, color, name, description, tags, model, run counts — with the
 * tag filter, the text search and the two empty states (no agents yet; nothing matches).
 */

import { byId, h } from './dom.js';
import { t } from './i18n.js';
import { icon, paintAvatar, setAgentColor } from './icons.js';

export class AgentCards {
  constructor({ modelLabel, onChat, onEdit, onDelete }) {
    this.modelLabel = modelLabel;
    this.actions = { onChat, onEdit, onDelete };
    this.agents = [];
    this.loaded = false;
    this.list = byId('cards');
    this.search = byId('search');
    this.tagSelect = byId('tag-filter');
    this.search.addEventListener('input', () => this.render());
    this.tagSelect.addEventListener('change', () => this.render());
    byId('clear-filters').addEventListener('click', () => this.clearFilters());
  }

  setAgents(agents) {
    this.agents = agents;
    this.loaded = true;
    this.render();
  }

  get(id) {
    return this.agents.find((a) => a.id === id) || null;
  }

  upsert(agent) {
    const i = this.agents.findIndex((a) => a.id === agent.id);
    if (i >= 0) this.agents[i] = agent;
    else this.agents.unshift(agent);
    this.render();
  }

  remove(id) {
    this.agents = this.agents.filter((a) => a.id !== id);
    this.render();
  }

  filterByTag(tag) {
    this.tagSelect.value = tag;
    this.render();
    this.tagSelect.focus();
  }

  clearFilters() {
    this.search.value = '';
    this.tagSelect.value = '';
    this.render();
    this.search.focus();
  }

  matches(agent, query, tag) {
    if (tag && !agent.tags.includes(tag)) return false;
    if (!query) return true;
    const haystack = [agent.name, agent.description, agent.model, ...agent.tags].join('\n').toLocaleLowerCase();
    return query.split(/\s+/).every((word) => haystack.includes(word));
  }

  render() {
    this.renderTags();
    const query = this.search.value.trim().toLocaleLowerCase();
    const tag = this.tagSelect.value;
    const shown = this.agents.filter((a) => this.matches(a, query, tag));
    byId('empty').hidden = !this.loaded || this.agents.length > 0;
    byId('no-match').hidden = this.agents.length === 0 || shown.length > 0;
    byId('filters').hidden = this.agents.length === 0;
    const count = this.agents.length;
    const status = byId('agents-status');
    if (!this.loaded) status.textContent = t('loading');
    else if (shown.length !== count) status.textContent = t('shownCount', { shown: shown.length, n: count });
    else status.textContent = count === 1 ? t('agentCountOne') : count ? t('agentCount', { n: count }) : '';
    // Cards are rebuilt (e.g. when run counts change): keep focus on the same control.
    const active = document.activeElement;
    const focusedCard = this.list.contains(active) ? active.closest('.card')?.dataset.id : null;
    const action = active?.dataset?.action;
    this.list.replaceChildren(...shown.map((a) => this.card(a)));
    if (focusedCard && action) {
      this.list.querySelector(`.card[data-id="${CSS.escape(focusedCard)}"] [data-action="${CSS.escape(action)}"]`)?.focus();
    }
  }

  renderTags() {
    const current = this.tagSelect.value;
    const tags = [...new Set(this.agents.flatMap((a) => a.tags))].sort();
    if (current && !tags.includes(current)) tags.unshift(current);
    this.tagSelect.replaceChildren(
      h('option', { value: '', text: t('allTags') }),
      ...tags.map((tag) => h('option', { value: tag, text: tag })),
    );
    this.tagSelect.value = current;
  }

  card(agent) {
    const nameId = `agent-name-${agent.id}`;
    const { onChat, onEdit, onDelete } = this.actions;
    const tags = agent.tags.map((tag) =>
      h('li', {}, h('button', { class: 'tag', type: 'button', 'data-action': `tag-${tag}`, title: t('tagged', { tag }), text: tag, on: { click: () => this.filterByTag(tag) } })),
    );
    return h(
      'li',
      { class: 'card', 'data-id': agent.id },
      setAgentColor(h(
        'article',
        { 'aria-labelledby': nameId },
        h(
          'div',
          { class: 'card-top' },
          paintAvatar(h('span', { class: 'avatar', 'aria-hidden': 'true' }), agent),
          h('div', { class: 'card-title' }, h('h3', { id: nameId, text: agent.name }), h('p', { class: 'model', text: this.modelLabel(agent.model) })),
        ),
        agent.description ? h('p', { class: 'desc', text: agent.description }) : null,
        tags.length ? h('ul', { class: 'tags', 'aria-label': t('fTags') }, tags) : null,
        h(
          'dl',
          { class: 'stats' },
          h('div', {}, h('dt', { text: t('runs') }), h('dd', { class: 'total-runs', text: agent.total_runs })),
          h('div', {}, h('dt', { text: t('succeeded') }), h('dd', { class: 'successful-runs', text: agent.successful_runs })),
        ),
        h(
          'div',
          { class: 'card-actions' },
          h('button', { class: 'btn primary chat-btn', type: 'button', 'data-action': 'chat', 'aria-label': t('chatWith', { name: agent.name }), on: { click: () => onChat(agent.id) } }, icon('chat', 16), h('span', { text: t('chat') })),
          h('button', { class: 'icon-btn', type: 'button', 'data-action': 'edit', 'aria-label': t('editAgent', { name: agent.name }), title: t('editAgent', { name: agent.name }), on: { click: () => onEdit(agent.id) } }, icon('edit', 16)),
          h('button', { class: 'icon-btn danger', type: 'button', 'data-action': 'delete', 'aria-label': t('deleteAgent', { name: agent.name }), title: t('deleteAgent', { name: agent.name }), on: { click: () => onDelete(agent.id) } }, icon('trash', 16)),
        ),
      ), agent.color),
    );
  }
}
