// The command-centre screen: wires the map, the panels and the live events together.
// window.onemapScreen exposes the map and the page state (used by the browser tests and
// handy from the console of a wall PC).
import { status } from './api.js';
import { t, translatePage } from './i18n.js';
import { LiveEvents } from './live.js';
import { loadRuns, ScreenMap } from './map.js';
import { applyLastMile, refreshStats, refreshWarnings, resizeCharts, shownAt } from './panels.js';

const catalog = JSON.parse(document.getElementById('onemap-catalog')?.textContent || '{}');
const state = { ready: false, readyMs: null, warnings: [], stats: null, errors: [], shownAt };
const screen = new ScreenMap(catalog);
window.onemapScreen = { state, screen, get map() { return screen.map; } };

function toast(text, level) {
  const box = document.getElementById('toasts');
  const div = document.createElement('div');
  div.className = `toast${level ? ` lvl-${level}` : ''}`;
  div.textContent = text;
  box.prepend(div);
  while (box.children.length > 4) box.lastElementChild.remove();
  setTimeout(() => div.remove(), 8000);
}

function pickWarning(f) {
  screen.fitGeometry(f.geometry);
}

// One refresh per panel at a time: events during a refresh ask for one more run after it
// (never dropped); bursts coalesce.  Resolves when the panel shows the latest data.
const jobs = new Map();
function soon(key, fn, delayMs = 0) {
  let job = jobs.get(key);
  if (!job) {
    job = { promise: null, running: false, again: false };
    jobs.set(key, job);
  }
  if (job.running) {
    job.again = true;
    return job.promise;
  }
  if (job.promise) return job.promise;
  job.promise = new Promise((resolve) => {
    setTimeout(async () => {
      job.running = true;
      do {
        job.again = false;
        try {
          await fn();
        } catch (err) {
          state.errors.push(String(err));
          if (state.errors.length > 50) state.errors.shift();
        }
      } while (job.again);
      job.running = false;
      job.promise = null;
      resolve();
    }, delayMs);
  });
  return job.promise;
}

const refresh = {
  // The warnings panel goes first: tile reloads wait for it (screen.hold), since on a
  // software-rendered wall PC a reload keeps the main thread busy for a while.
  warnings: () => screen.hold(soon('warnings', async () => {
    const features = await refreshWarnings(pickWarning);
    state.warnings = features ?? [];
    if (features) screen.showWarnings(features.map((f) => f.properties.code));
  })),
  stats: () => soon('stats', async () => { state.stats = await refreshStats(catalog); }, 250),
  runs: () => soon('runs', () => loadRuns(document.getElementById('run-select'),
    document.getElementById('run-info'), (id) => screen.showRun(id)), 250),
};

function onEvent(type, data) {
  switch (type) {
    case 'warning_issued':
    case 'warning_lifted':
    case 'warning_expired':
      // Panel first; charts and tiles after it.
      refresh.warnings().then(() => refresh.stats());
      screen.refreshTiles();
      if (type !== 'warning_expired') {
        toast(`${t(type === 'warning_issued' ? 'toast_warning_issued' : 'toast_warning_lifted')}`
          + ` ${data.code ?? ''} ${data.level ? t(`level_${data.level}`) : ''}`, data.level);
      }
      break;
    case 'warning_acked':
    case 'resident_status':
      // The counts come with the event: paint them now, re-read the list afterwards.
      applyLastMile(type, data);
      refresh.warnings();
      break;
    case 'incident_reported':
      refresh.stats();
      screen.refreshTiles();
      toast(`${t('toast_incident')} ${data.code ?? ''}`);
      break;
    case 'incident_step':
      refresh.stats();
      break;
    case 'incident_overdue':
      refresh.stats();
      toast(`${t('toast_overdue')} ${data.code ?? ''}`, 'orange');
      break;
    case 'run_finished':
      refresh.runs();
      refresh.stats();
      if (screen.run === null) screen.refreshTiles({ risk: true });
      if (data.status === 'done') toast(`${t('toast_run')} #${data.run_id ?? ''}`);
      break;
    case 'layer_changed':
      screen.refreshTiles();
      if (data.layer === 'cameras' || data.layer === 'incidents') refresh.stats();
      break;
    default:
      break;
  }
}

function resync() {
  refresh.warnings();
  refresh.stats();
  refresh.runs();
  screen.refreshAll();
}

function clock() {
  const el = document.getElementById('clock');
  const tick = () => {
    el.textContent = new Date().toLocaleString(document.documentElement.lang, { hour12: false });
  };
  tick();
  setInterval(tick, 1000);
}

async function main() {
  translatePage();
  status.render();
  clock();
  const live = new LiveEvents(onEvent, resync);
  window.onemapScreen.live = live;
  // Panels and events start at once; the map is what "ready" waits for.
  refresh.warnings();
  live.start();
  try {
    await screen.start();
    screen.firstIdle.then(() => {
      state.readyMs = performance.now();
      state.ready = true;
      document.body.dataset.ready = 'true';
      window.dispatchEvent(new Event('onemap:ready'));
    });
  } catch (err) {
    state.errors.push(String(err));
    status.problem('server');
    setTimeout(() => location.reload(), 10000);
  }
  refresh.stats();
  refresh.runs();
  // A fallback in case an event was lost: panels are re-read every 30 s anyway.
  setInterval(() => { refresh.warnings(); refresh.stats(); }, 30000);
  window.addEventListener('resize', resizeCharts);
}

main();
