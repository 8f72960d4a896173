/**
 * A small, safe Markdown renderer for replies. It builds DOM nodes and sets text with
 * `textContent`, so no HTML in the text — from a user or a model — is ever parsed. Links are
 * kept only for http(s) and mailto URLs and open in a new tab with `rel="noopener noreferrer"`;
 * images are never loaded, they become links to the image instead.
 *
 * Blocks: paragraphs, #-headings, fenced code, block quotes, lists (nested by indentation),
 * tables and rules. Inline: `code`, **strong**, *emphasis*, ~~strike~~, [links](url),
 * ![images](url), <autolinks> and bare URLs.
 */

import { h } from './dom.js';
import { t } from './i18n.js';

const MAX_DEPTH = 6;
const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])\s+/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

/** Only absolute http(s) and mailto URLs survive; anything else is shown as text. */
export function safeUrl(raw) {
  const text = String(raw || '').trim();
  if (!/^(https?:\/\/|mailto:)/i.test(text)) return null;
  try {
    const url = new URL(text);
    return ['http:', 'https:', 'mailto:'].includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

/** A DocumentFragment rendering `text`. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  fragment.append(...blocks(String(text).replace(/\r\n?/g, '\n').split('\n'), 0));
  return fragment;
}

const startsBlock = (line) =>
  FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);

function blocks(lines, depth) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (!line.trim()) {
      i += 1;
    } else if ((m = FENCE.exec(line))) {
      const body = [];
      for (i += 1; i < lines.length && !lines[i].trimStart().startsWith(m[1]); i += 1) body.push(lines[i]);
      i += 1;
      out.push(h('pre', {}, h('code', { text: body.join('\n'), 'data-lang': m[2] || null })));
    } else if ((m = HEADING.exec(line))) {
      out.push(h(`h${Math.min(6, m[1].length + 2)}`, {}, inline(m[2], depth)));
      i += 1;
    } else if (RULE.test(line)) {
      out.push(h('hr'));
      i += 1;
    } else if (QUOTE.test(line) && depth < MAX_DEPTH) {
      const inner = [];
      for (; i < lines.length && QUOTE.test(lines[i]); i += 1) inner.push(lines[i].replace(QUOTE, ''));
      out.push(h('blockquote', {}, blocks(inner, depth + 1)));
    } else if (ITEM.test(line) && depth < MAX_DEPTH) {
      i = list(lines, i, depth, out);
    } else if (line.includes('|') && TABLE_RULE.test(lines[i + 1] || '') && lines[i + 1].includes('-')) {
      i = table(lines, i, depth, out);
    } else {
      const para = [line];
      for (i += 1; i < lines.length && lines[i].trim() && !startsBlock(lines[i]); i += 1) para.push(lines[i]);
      out.push(h('p', {}, inline(para.join('\n'), depth)));
    }
  }
  return out;
}

function list(lines, start, depth, out) {
  const first = ITEM.exec(lines[start]);
  const ordered = /\d/.test(first[2]);
  const el = h(ordered ? 'ol' : 'ul');
  if (ordered && parseInt(first[2], 10) !== 1) el.setAttribute('start', String(parseInt(first[2], 10)));
  let i = start;
  while (i < lines.length) {
    const m = ITEM.exec(lines[i]);
    if (!m || /\d/.test(m[2]) !== ordered) break;
    const head = [lines[i].slice(m[0].length)];
    const nested = [];
    for (i += 1; i < lines.length; i += 1) {
      const next = lines[i];
      if (ITEM.test(next) && !/^\s{2,}/.test(next)) break;
      if (!next.trim() && !/^\s{2,}\S/.test(lines[i + 1] || '')) break;
      if (/^\s{2,}/.test(next) || !next.trim()) nested.push(next.replace(/^\s{2,4}/, ''));
      else if (nested.length || startsBlock(next)) break;
      else head.push(next);
    }
    el.append(h('li', {}, inline(head.join('\n'), depth), nested.length ? blocks(nested, depth + 1) : []));
    while (i < lines.length && !lines[i].trim()) i += 1;
  }
  out.push(el);
  return i;
}

function cells(line) {
  return line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
}

function table(lines, start, depth, out) {
  const head = h('tr', {}, cells(lines[start]).map((c) => h('th', { scope: 'col' }, inline(c, depth))));
  const body = h('tbody');
  let i = start + 2;
  for (; i < lines.length && lines[i].includes('|') && lines[i].trim(); i += 1) {
    body.append(h('tr', {}, cells(lines[i]).map((c) => h('td', {}, inline(c, depth)))));
  }
  out.push(h('div', { class: 'md-table' }, h('table', {}, h('thead', {}, head), body)));
  return i;
}

// Inline patterns, tried together; the earliest match wins (ties: the first listed).
const INLINE = [
  ['code', /`([^`\n]+)`/],
  ['image', /!\[([^\]\n]*)\]\(\s*<?([^\s)>]*)>?(?:\s+"[^"\n]*")?\s*\)/],
  ['link', /\[([^\]\n]+)\]\(\s*<?([^\s)>]*)>?(?:\s+"[^"\n]*")?\s*\)/],
  ['autolink', /<((?:https?:\/\/|mailto:)[^\s<>]+)>/i],
  ['url', /\bhttps?:\/\/[^\s<>()[\]]*[^\s<>()[\].,;:!?'"]/i],
  ['strong', /\*\*(?=\S)([^\n]*?\S)\*\*|__(?=\S)([^\n]*?\S)__/],
  ['del', /~~(?=\S)([^\n]*?\S)~~/],
  ['em', /\*(?=[^\s*])([^*\n]*?[^\s*])\*|(?<![\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?![\w])/],
];

function inline(text, depth) {
  const out = [];
  let rest = text;
  while (rest) {
    let best = null;
    for (const [kind, re] of INLINE) {
      const m = re.exec(rest);
      if (m && (!best || m.index < best.m.index)) best = { kind, m };
    }
    if (!best) break;
    const { kind, m } = best;
    if (m.index) out.push(...textWithBreaks(rest.slice(0, m.index)));
    out.push(inlineNode(kind, m, depth));
    rest = rest.slice(m.index + m[0].length);
  }
  if (rest) out.push(...textWithBreaks(rest));
  return out;
}

function inlineNode(kind, m, depth) {
  const inner = (s) => (depth < MAX_DEPTH ? inline(s, depth + 1) : s);
  switch (kind) {
    case 'code':
      return h('code', { text: m[1] });
    case 'strong':
      return h('strong', {}, inner(m[1] ?? m[2]));
    case 'em':
      return h('em', {}, inner(m[1] ?? m[2]));
    case 'del':
      return h('del', {}, inner(m[1]));
    case 'image':
      return imageLink(m[1], m[2], m[0]);
    case 'link':
      return link(m[2], m[1], m[0]);
    default: // an autolink <url> or a bare URL
      return link(m[1] ?? m[0], m[1] ?? m[0], m[0]);
  }
}

function link(rawUrl, label, source) {
  const href = safeUrl(rawUrl);
  if (!href) return document.createTextNode(source);
  return h('a', { href, rel: 'noopener noreferrer', target: '_blank', text: label });
}

function imageLink(alt, rawUrl, source) {
  const href = safeUrl(rawUrl);
  if (!href) return document.createTextNode(source);
  const label = t('imageLink', { alt: alt || new URL(href).pathname.split('/').pop() || href });
  return h('a', { href, rel: 'noopener noreferrer', target: '_blank', class: 'md-image', title: href, text: label });
}

function textWithBreaks(text) {
  const out = [];
  text.split('\n').forEach((part, i) => {
    if (i) out.push(h('br'));
    if (part) out.push(document.createTextNode(part));
  });
  return out;
}
