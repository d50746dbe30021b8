// Talking to this server: JSON fetches with an optional API key, and the status badge.
//
// A wall screen runs as the anonymous role (sensitive fields masked).  An operator may open
// /screen#key=<api key>: the key moves to sessionStorage (the fragment is never sent to the
// server or its logs) and goes out as X-API-Key with every request to this server, so
// popups then show what that key's role may see.
import { t } from './i18n.js';

const KEY_STORE = 'onemap.apiKey';

function takeKeyFromFragment() {
  const m = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY_STORE, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY_STORE);
}

export const API_KEY = takeKeyFromFragment();
// A key typed into the address bar of an open screen: keep it and start again with it.
window.addEventListener('hashchange', () => {
  if (/(?:^#|&)key=/.test(location.hash)) {
    takeKeyFromFragment();
    location.reload();
  }
});

/** Headers for a request to `url` (the key only ever goes to this origin). */
export function authHeaders(url) {
  if (!API_KEY) return {};
  return new URL(url, location.href).origin === location.origin ? { 'X-API-Key': API_KEY } : {};
}

export class HttpError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}${body && body.code ? ` ${body.code}` : ''}`);
    this.status = status;
    this.body = body;
  }
}

/** GET `path` as JSON; throws HttpError on a non-2xx answer, TypeError when unreachable. */
export async function getJSON(path, { timeoutMs = 8000 } = {}) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const r = await fetch(path, { headers: authHeaders(path), signal: ctrl.signal,
      cache: 'no-store' });
    const body = r.headers.get('content-type')?.includes('json') ? await r.json() : null;
    if (!r.ok) throw new HttpError(r.status, body);
    return body;
  } finally {
    clearTimeout(timer);
  }
}

// ---- the status badge ------------------------------------------------------------------
// Problems are kept by source ("server", "events", "tiles", "database"); the badge shows the
// worst one, or "live" when none is left.
const problems = new Map();
const SEVERITY = { server: 4, tiles: 3, database: 2, events: 1 };
const TEXT = { server: 'status_server_down', tiles: 'status_tiles_down',
  database: 'status_db_down', events: 'status_reconnecting' };
let connected = false;

function render() {
  const el = document.getElementById('status');
  if (!el) return;
  let worst = null;
  for (const key of problems.keys()) if (!worst || SEVERITY[key] > SEVERITY[worst]) worst = key;
  if (worst) {
    el.className = worst === 'events' ? 'badge badge-wait' : 'badge badge-down';
    el.textContent = t(TEXT[worst]);
  } else if (connected) {
    el.className = 'badge badge-ok';
    el.textContent = t('status_live');
  } else {
    el.className = 'badge badge-wait';
    el.textContent = t('status_connecting');
  }
  el.dataset.state = worst ?? (connected ? 'live' : 'connecting');
}

export const status = {
  problem(kind) { if (!problems.has(kind)) { problems.set(kind, true); render(); } },
  clear(kind) { if (problems.delete(kind)) render(); },
  live(on) { connected = on; render(); },
  render,
};
