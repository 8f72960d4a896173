/**
 * The agent form's rules, mirroring the server's (`api/schemas/agents.py`): lengths count
 * code points after trimming, tags are trimmed, lower-cased and de-duplicated; at most 32
 * tools, each a registry name (`calculator`, `server.tool`) the server offers; `max_steps` a
 * whole number from 1 to 32. Returns the
 * request body and, per field, the key of the message to show.
 */

export const LIMITS = { name: 80, description: 2000, tags: 16, tag: 32, instructions: 20000, tools: 32, steps: 32 };
const TOOL_NAME = /^[a-z][a-z0-9_-]{0,31}(\.[A-Za-z0-9_-]{1,64})?$/;
const COLOR = /^#[0-9A-Fa-f]{6}$/;
const ICON_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const CONTROL = /\p{Cc}/u;
const TAG_FORBIDDEN = /[\p{C}\p{Z}]/u;
const EMOJI_CATEGORY = /^[\p{So}\p{Sk}\p{Mn}\p{Me}]$/u;
const EMOJI_JOINERS = new Set(['\u200d', '\ufe0f', '\ufe0e', '\u20e3']);

const length = (text) => [...text].length;

export function parseTags(raw) {
  const tags = [];
  for (const part of String(raw).split(',')) {
    const tag = part.trim().toLowerCase();
    if (tag && !tags.includes(tag)) tags.push(tag);
  }
  return tags;
}

function isEmojiPart(ch) {
  const cp = ch.codePointAt(0);
  return (
    EMOJI_JOINERS.has(ch) ||
    (cp > 0x2000 && EMOJI_CATEGORY.test(ch)) ||
    (cp >= 0x1f1e6 && cp <= 0x1f1ff) ||
    (cp >= 0x1f3fb && cp <= 0x1f3ff)
  );
}

export function validIcon(icon) {
  const chars = [...icon];
  return ICON_NAME.test(icon) || (chars.length >= 1 && chars.length <= 8 && chars.every(isEmojiPart));
}

function checkTags(tags) {
  for (const tag of tags) {
    if (length(tag) > LIMITS.tag) return ['vTagLength', { tag }];
    if ([...tag].some((ch) => ch !== ' ' && TAG_FORBIDDEN.test(ch))) return ['vTagChars', { tag }];
  }
  return tags.length > LIMITS.tags ? ['vTagCount', {}] : null;
}

/** `known`: the names the server offers, or `null` when the list is not to be checked. */
function checkTools(tools, known) {
  if (tools.length > LIMITS.tools) return ['vToolCount', { max: LIMITS.tools }];
  const bad = tools.find((name) => !TOOL_NAME.test(name));
  if (bad !== undefined) return ['vToolName', { name: bad }];
  const unknown = known ? tools.filter((name) => !known.has(name)) : [];
  return unknown.length ? ['vToolUnknown', { names: unknown.join(', ') }] : null;
}

function checkSteps(raw) {
  const steps = Number(raw);
  const ok = String(raw).trim() !== '' && Number.isInteger(steps) && steps >= 1 && steps <= LIMITS.steps;
  return ok ? null : ['vMaxSteps', {}];
}

function checkText(value, max, { control = false } = {}) {
  if (length(value) > max) return ['vTooLong', { max, n: length(value) }];
  if (control && CONTROL.test(value)) return ['vControl', {}];
  if (value.includes('\u0000')) return ['vNul', {}];
  return null;
}

/**
 * `{body, errors}` for the form's raw values; `errors` maps a field name to
 * `[messageKey, vars]` and is empty when the body may be sent. `raw.tools` is a list of
 * names; `knownTools` (a Set, optional) the names the server offers.
 */
export function validateAgent(raw, knownTools = null) {
  const errors = {};
  const body = {
    name: raw.name.trim(),
    description: raw.description,
    tags: parseTags(raw.tags),
    color: raw.color.trim(),
    icon: raw.icon.trim(),
    instructions: raw.instructions,
    temperature: Number(raw.temperature),
    tools: [...new Set(raw.tools || [])],
    max_steps: Number(raw.max_steps),
  };
  if (raw.model) body.model = raw.model;
  const check = (field, problem) => {
    if (problem) errors[field] = problem;
  };
  check('name', body.name ? checkText(body.name, LIMITS.name, { control: true }) : ['vName', {}]);
  check('description', checkText(body.description, LIMITS.description));
  check('tags', checkTags(body.tags));
  check('color', COLOR.test(body.color) ? null : ['vColor', {}]);
  check('icon', length(body.icon) <= 32 && validIcon(body.icon) ? null : ['vIcon', {}]);
  check('instructions', checkText(body.instructions, LIMITS.instructions));
  const temp = body.temperature;
  const tempOk = String(raw.temperature).trim() !== '' && Number.isFinite(temp) && temp >= 0 && temp <= 2;
  check('temperature', tempOk ? null : ['vTemperature', {}]);
  check('tools', checkTools(body.tools, knownTools));
  check('max_steps', checkSteps(raw.max_steps));
  return { body, errors };
}
