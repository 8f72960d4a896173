/**
 * The dashboard's entry point: picks the language, signs in silently (the session cookie, or a
 * new guest session), loads models and agents, and wires the cards, the agent form, the chat
 * pane and the socket together.
 */

import { AgentCards } from './agent-cards.js';
import { AgentForm } from './agent-form.js';
import { api, listAll, onSessionRenewed, signIn } from './api.js';
import { ChatPane } from './chat.js';
import { confirmAction, errorText, toast } from './dialogs.js';
import { byId } from './dom.js';
import { currentLanguage, onLanguageChange, pickLanguage, setLanguage, t } from './i18n.js';
import { getPref, setPref } from './prefs.js';
import { ChatSocket } from './socket.js';

let models = { items: [], default: null };

function modelLabel(id) {
  return models.items.find((m) => m.id === id)?.label || id;
}

const socket = new ChatSocket({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
  onFrame: (frame) => chat.handleFrame(frame),
  onState: (state) => chat.showConnection(state),
  onTrouble: () => signIn().catch(() => {}),
});

const cards = new AgentCards({
  modelLabel,
  onChat: (id) => openChat(id),
  onEdit: (id) => form.open(cards.get(id)),
  onDelete: (id) => deleteAgent(id),
});

const form = new AgentForm({
  onSaved: (agent, isNew) => {
    cards.upsert(agent);
    chat.updateAgent(agent);
    toast(t(isNew ? 'created' : 'saved', { name: agent.name }));
    const action = isNew ? 'chat' : 'edit';
    document.querySelector(`.card[data-id="${CSS.escape(agent.id)}"] [data-action="${action}"]`)?.focus();
  },
});

const chat = new ChatPane({
  socket,
  modelLabel,
  onRunEnded: (agentId) => refreshAgent(agentId),
  onClosed: (agentId) => {
    const button = agentId && document.querySelector(`.card[data-id="${CSS.escape(agentId)}"] [data-action="chat"]`);
    (button || byId('agents-heading')).focus();
  },
});

function openChat(id) {
  const agent = cards.get(id);
  if (!agent) return;
  socket.connect();
  chat.open(agent);
}

/** Reads the agent again, for its run counts after a run ended. */
async function refreshAgent(id) {
  try {
    const agent = await api('GET', `/api/agents/${encodeURIComponent(id)}`);
    cards.upsert(agent);
    chat.updateAgent(agent);
  } catch (err) {
    if (err.status === 404) cards.remove(id);
  }
}

async function deleteAgent(id) {
  const agent = cards.get(id);
  if (!agent) return;
  const sure = await confirmAction({
    title: t('confirmDeleteTitle'),
    body: t('confirmDeleteBody', { name: agent.name }),
    action: t('delete'),
  });
  if (!sure) return;
  try {
    await api('DELETE', `/api/agents/${encodeURIComponent(id)}`);
    if (chat.agent?.id === id) chat.close();
    cards.remove(id);
    toast(t('deleted', { name: agent.name }));
    byId('agents-heading').focus();
  } catch (err) {
    toast(t('error', { msg: errorText(err) }), 'error');
  }
}

function showUser(session) {
  const who = byId('who');
  who.dataset.state = session ? 'signed-in' : 'pending';
  byId('who-label').textContent = session ? t('guest') : t('signingIn');
  who.title = session ? t('guestTitle', { id: session.user.id }) : '';
}

async function signInUntilDone() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await signIn();
    } catch {
      byId('who-label').textContent = t('signInFailed');
      await new Promise((resolve) => setTimeout(resolve, Math.min(10000, 1000 * 2 ** attempt)));
    }
  }
}

async function boot() {
  setLanguage(pickLanguage(getPref('lang')));
  const langSelect = byId('lang');
  langSelect.value = currentLanguage();
  langSelect.addEventListener('change', () => {
    setPref('lang', langSelect.value);
    setLanguage(langSelect.value);
  });
  for (const id of ['new-agent', 'empty-create']) byId(id).addEventListener('click', () => form.open());
  onSessionRenewed(() => toast(t('sessionRenewed')));
  cards.render();
  const session = await signInUntilDone();
  showUser(session);
  onLanguageChange(() => {
    showUser(session);
    cards.render();
    chat.relabel();
  });
  const [modelList, agents] = await Promise.all([
    api('GET', '/api/models').catch(() => ({ items: [], default: null })),
    listAll('/api/agents?limit=200').catch((err) => {
      toast(t('error', { msg: errorText(err) }), 'error');
      return [];
    }),
  ]);
  models = modelList;
  form.setModels(models);
  cards.setAgents(agents);
  const last = getPref('lastAgent');
  if (last && cards.get(last) && matchMedia('(min-width: 761px)').matches) openChat(last);
}

boot();
