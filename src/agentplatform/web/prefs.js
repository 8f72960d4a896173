/**
 * UI preferences kept in localStorage: the language and the last agent opened. Never a
 * session token: the session lives in an HttpOnly cookie that scripts cannot read.
 */

const PREFIX = 'agentplatform.';

export function getPref(key) {
  try {
    return localStorage.getItem(PREFIX + key);
  } catch {
    return null; // storage disabled: preferences are simply not remembered
  }
}

export function setPref(key, value) {
  try {
    if (value === null || value === undefined) localStorage.removeItem(PREFIX + key);
    else localStorage.setItem(PREFIX + key, String(value));
  } catch {
    // storage full or disabled: nothing to do
  }
}
