/**
 * English and Korean. `t(key, vars)` looks a string up in the current language; static
 * markup names its strings with `data-i18n` (text), `data-i18n-placeholder`,
 * `data-i18n-label` (aria-label) and `data-i18n-title`, filled in by `applyI18n`.
 */

import { en, ko } from './strings.js';

const TABLES = { en, ko };
let lang = 'en';
const listeners = new Set();

/** The language to start with: a saved choice, else the browser's. */
export function pickLanguage(saved) {
  if (saved && Object.hasOwn(TABLES, saved)) return saved;
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language || 'en'];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (Object.hasOwn(TABLES, base)) return base;
  }
  return 'en';
}

export const currentLanguage = () => lang;

export function t(key, vars = {}) {
  const text = TABLES[lang][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** Like `t`, but `null` when neither language has the key (for optional names of things). */
export function tMaybe(key, vars = {}) {
  return Object.hasOwn(TABLES[lang], key) || Object.hasOwn(en, key) ? t(key, vars) : null;
}

/** Switches the language, relabels the static markup and tells every listener. */
export function setLanguage(next) {
  lang = Object.hasOwn(TABLES, next) ? next : 'en';
  document.documentElement.lang = lang;
  applyI18n(document);
  for (const fn of listeners) fn(lang);
}

export function onLanguageChange(fn) {
  listeners.add(fn);
}

export function applyI18n(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll('[data-i18n-label]')) {
    el.setAttribute('aria-label', t(el.dataset.i18nLabel));
  }
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
}

/** How a tool is called on screen: a Korean name for the built-ins, else its own name. */
export function toolLabel(name) {
  return tMaybe(`tool:${name}`) ?? name;
}

/** A date and time in the current language. */
export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}
