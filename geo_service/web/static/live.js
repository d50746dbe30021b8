// Live updates: the /events stream (Server-Sent Events) and a /health watch.
//
// The browser's EventSource reconnects by itself after a dropped stream (sending
// Last-Event-ID, so the server replays what was missed).  When the server answers with an
// error instead (restarting behind a proxy, 503) the EventSource gives up; then a new one
// is opened with back-off and ?last_event_id=.  /health is polled so the badge tells
// "server unreachable" or "database unavailable" apart, and a recovery reloads the tiles
// that failed meanwhile.
import { getJSON, HttpError, status } from './api.js';

export const EVENT_TYPES = ['warning_issued', 'warning_lifted', 'warning_expired', 'run_finished',
  'incident_reported', 'readings_received', 'layer_changed', 'warning_acked', 'resident_status',
  'incident_step', 'incident_overdue'];

export class LiveEvents {
  /**
   * @param {(type: string, data: object) => void} onEvent  one event
   * @param {() => void} onResync  after a reconnection or an outage: reload what is shown
   */
  constructor(onEvent, onResync) {
    this.onEvent = onEvent;
    this.onResync = onResync;
    this.source = null;
    this.lastId = null;
    this.backoffMs = 1000;
    this.hadError = false;
    this.serverDown = false;
    this.counts = {};
  }

  start() {
    this._open();
    this._healthLoop();
  }

  _open() {
    const url = this.lastId ? `/events?last_event_id=${encodeURIComponent(this.lastId)}` : '/events';
    const es = new EventSource(url);
    this.source = es;
    es.onopen = () => {
      this.backoffMs = 1000;
      status.clear('events');
      status.live(true);
      if (this.hadError) {
        this.hadError = false;
        this.onResync();
      }
    };
    const handle = (ev) => {
      if (ev.lastEventId) this.lastId = ev.lastEventId;
      let data = {};
      try { data = JSON.parse(ev.data); } catch { /* keep {} */ }
      this.counts[ev.type] = (this.counts[ev.type] ?? 0) + 1;
      this.onEvent(ev.type, data?.payload ?? data);
    };
    for (const type of EVENT_TYPES) es.addEventListener(type, handle);
    es.onmessage = handle;
    es.onerror = () => {
      this.hadError = true;
      status.live(false);
      status.problem('events');
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        const wait = this.backoffMs;
        this.backoffMs = Math.min(this.backoffMs * 2, 15000);
        setTimeout(() => { if (this.source === es) this._open(); }, wait);
      }
    };
  }

  async _healthLoop() {
    for (;;) {
      let down = null;
      try {
        await getJSON('/health', { timeoutMs: 4000 });
      } catch (err) {
        down = err instanceof HttpError && err.status === 503 ? 'database' : 'server';
      }
      if (down === 'server') {
        status.clear('database');
        status.problem('server');
      } else if (down === 'database') {
        status.clear('server');
        status.problem('database');
      } else {
        status.clear('server');
        status.clear('database');
      }
      const wasDown = this.serverDown;
      this.serverDown = down !== null;
      if (wasDown && !this.serverDown) this.onResync();
      await new Promise((r) => setTimeout(r, this.serverDown ? 2000 : 10000));
    }
  }
}
