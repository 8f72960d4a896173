/**
 * A tiny DOM builder. Text always goes in as text nodes or `textContent`, attributes through
 * `setAttribute`: nothing here ever parses a string as HTML.
 */

/** The element with this id. */
export const byId = (id) => document.getElementById(id);

/**
 * `h('button', {class: 'btn', text: 'Save', on: {click}}, child, …)`.
 * Props: `class`, `text`, `on` (event listeners), `dataset`; any other key is an attribute
 * (`true` → present, `false`/`null`/`undefined` → left out).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'on') for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (/^on|^style$/i.test(key)) throw new Error(`refusing attribute ${key}`);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Appends children: nodes as they are, strings and numbers as text, arrays flattened. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A random id usable as a `client_msg_id` (works outside secure contexts too). */
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Whether a scroll container is (nearly) scrolled to its end. */
export function nearBottom(el, slack = 80) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < slack;
}
