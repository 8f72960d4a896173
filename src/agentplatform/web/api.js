/**
 * The HTTP API client. The session is the HttpOnly cookie the server sets; this module never
 * sees a token. `signIn()` checks the cookie's session and, when there is none, silently asks
 * for a guest one. A 401 on any other call signs in again once and retries.
 */

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let signingIn = null;
let renewed = () => {};

/** Called when an expired session had to be replaced by a new guest session. */
export function onSessionRenewed(fn) {
  renewed = fn;
}

async function request(method, path, body) {
  // The page's policy is no-referrer; for our own API, say where we are, so that the server's
  // cross-site check sees a real Origin (some browsers send "null" under no-referrer).
  const init = {
    method,
    credentials: 'same-origin',
    referrerPolicy: 'same-origin',
    headers: { Accept: 'application/json' },
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'network', String(err?.message || err));
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data?.error || {};
    throw new ApiError(response.status, error.code || 'error', error.message || response.statusText, error.details);
  }
  return data;
}

/** `{user, expires_at}` of the cookie's session, made as a guest session if there is none. */
export function signIn() {
  signingIn ??= (async () => {
    try {
      return await request('GET', '/api/auth/session');
    } catch (err) {
      if (err.status !== 401) throw err;
      return request('POST', '/api/auth/guest');
    }
  })().finally(() => {
    signingIn = null;
  });
  return signingIn;
}

/** A JSON API call; on 401 the session is renewed once and the call repeated. */
export async function api(method, path, body) {
  try {
    return await request(method, path, body);
  } catch (err) {
    if (err.status !== 401 || path.startsWith('/api/auth/')) throw err;
    await signIn();
    renewed();
    return request(method, path, body);
  }
}

/** Every page of a list endpoint (`{items, next_cursor}`), up to `maxPages`. */
export async function listAll(path, maxPages = 20) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page += 1) {
    const sep = path.includes('?') ? '&' : '?';
    const url = cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path;
    const data = await api('GET', url);
    items.push(...data.items);
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return items;
}
