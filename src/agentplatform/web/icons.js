/**
 * Line icons drawn as SVG paths (24×24, stroked), for agents and for the interface, and the
 * avatar of an agent: its icon name, its emoji, or else the first letter of its name.
 */

import { validIcon } from './validate.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const COLOR = /^#[0-9A-Fa-f]{6}$/;

/** Icons an agent may use, by name. */
export const AGENT_ICONS = {
  robot: 'M12 3v3M7 7h10a3 3 0 0 1 3 3v7a3 3 0 0 1-3 3H7a3 3 0 0 1-3-3v-7a3 3 0 0 1 3-3zM9 12v1M15 12v1M9 16.5h6M2 12v3M22 12v3',
  sparkles: 'M12 3l1.9 5.1L19 10l-5.1 1.9L12 17l-1.9-5.1L5 10l5.1-1.9zM19 15l.8 2.2L22 18l-2.2.8L19 21l-.8-2.2L16 18l2.2-.8z',
  'book-open': 'M2 4h6a4 4 0 0 1 4 4v12a3 3 0 0 0-3-3H2zM22 4h-6a4 4 0 0 0-4 4v12a3 3 0 0 1 3-3h7z',
  code: 'M16 18l6-6-6-6M8 6l-6 6 6 6',
  terminal: 'M4 17l6-6-6-6M12 19h8',
  chat: 'M21 12a8 8 0 0 1-11.6 7.1L4 21l1.9-5.4A8 8 0 1 1 21 12z',
  star: 'M12 2.5l3 6.1 6.7 1-4.9 4.7 1.2 6.7-6-3.2-6 3.2 1.2-6.7-4.9-4.7 6.7-1z',
  bolt: 'M13 2L4 14h7l-1 8 9-12h-7z',
  globe: 'M12 2a10 10 0 1 0 0 20 10 10 0 1 0 0-20zM2 12h20M12 2a15 15 0 0 1 0 20M12 2a15 15 0 0 0 0 20',
  search: 'M11 4a7 7 0 1 0 0 14 7 7 0 1 0 0-14zM21 21l-5-5',
  lightbulb: 'M9 18h6M10 22h4M12 2a7 7 0 0 0-4 12.7V16h8v-1.3A7 7 0 0 0 12 2z',
  chart: 'M3 3v18h18M7 15l4-4 3 3 5-6',
  shield: 'M12 2l8 3v6c0 5-3.5 9.3-8 11-4.5-1.7-8-6-8-11V5z',
  mail: 'M3 5h18v14H3zM3 6l9 7 9-7',
  music: 'M9 18V5l12-2v13M6 15a3 3 0 1 0 0 6 3 3 0 1 0 0-6zM18 13a3 3 0 1 0 0 6 3 3 0 1 0 0-6z',
  heart: 'M12 21s-8-5.2-8-11a4.5 4.5 0 0 1 8-2.8A4.5 4.5 0 0 1 20 10c0 5.8-8 11-8 11z',
  pencil: 'M17 3l4 4L8 20H4v-4z',
};

const UI_ICONS = {
  plus: 'M12 5v14M5 12h14',
  send: 'M22 2L11 13M22 2l-7 20-4-9-9-4z',
  stop: 'M7 7h10v10H7z',
  trash: 'M3 6h18M8 6V4h8v2M6 6l1 14h10l1-14M10 11v5M14 11v5',
  edit: 'M17 3l4 4L8 20H4v-4z',
  close: 'M18 6L6 18M6 6l12 12',
  back: 'M19 12H5M12 19l-7-7 7-7',
  history: 'M3 12a9 9 0 1 0 3-6.7L3 8M3 3v5h5M12 7v5l4 2',
  chat: AGENT_ICONS.chat,
  user: 'M12 12a4 4 0 1 0 0-8 4 4 0 1 0 0 8zM4 21a8 8 0 0 1 16 0',
  image: 'M3 4h18v16H3zM3 16l5-5 5 5M14 14l2-2 5 5M15.5 8.5h.01',
  tool: 'M14.7 6.3a1 1 0 0 0 0 1.4l1.6 1.6a1 1 0 0 0 1.4 0l3.8-3.8a6 6 0 0 1-7.9 7.9l-6.9 6.9a2.1 2.1 0 0 1-3-3l6.9-6.9a6 6 0 0 1 7.9-7.9z',
  alert: 'M10.3 3.9L1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0zM12 9v4M12 17h.01',
};

/** An `<svg>` icon, hidden from assistive technology (label the control instead). */
export function icon(name, size = 18) {
  const d = UI_ICONS[name] || AGENT_ICONS[name];
  const svg = document.createElementNS(SVG_NS, 'svg');
  for (const [k, v] of Object.entries({
    viewBox: '0 0 24 24', width: size, height: size, fill: 'none', stroke: 'currentColor',
    'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round',
    'aria-hidden': 'true', focusable: 'false', class: 'icon',
  })) svg.setAttribute(k, String(v));
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', d || '');
  svg.append(path);
  return svg;
}

/** Sets `--agent-color` on `el` (a valid #RRGGBB only). */
export function setAgentColor(el, color) {
  el.style.setProperty('--agent-color', COLOR.test(color || '') ? color : '#6366F1');
  return el;
}

/** Fills `el` (an `.avatar`) with the agent's icon on its color. */
export function paintAvatar(el, agent) {
  el.replaceChildren();
  setAgentColor(el, agent.color);
  const name = agent.icon || '';
  if (Object.hasOwn(AGENT_ICONS, name)) el.append(icon(name, 20));
  else if (name && !/^[a-z]/.test(name) && validIcon(name)) el.textContent = name; // an emoji
  else el.textContent = [...(agent.name || '?').trim()][0]?.toUpperCase() || '?';
  return el;
}
