// The map: MapLibre GL JS on our own style, tiles and glyphs; layer switcher, popups, the
// risk-run overlay and tile refreshes on live events.
import * as maplibregl from '/vendor/maplibre-gl/dist/maplibre-gl.mjs';
import { authHeaders, getJSON, status } from './api.js';
import { LANG, num, pct, t, when } from './i18n.js';
import { popupContent } from './popup.js';

const REM = () => window.innerWidth / 120;
// The basemap's raster tiles all come from this server (HTTP/1.1 keep-alive, no CDN limits):
// ask for a whole screenful at once instead of MapLibre's default 16.
maplibregl.setMaxParallelImageRequests(64);
// CJK ideographs are drawn from the browser's own font (Debian fonts-noto-cjk); other
// glyphs come as PBFs from /fonts on this server.
const LOCAL_CJK = "'Noto Sans CJK SC', 'WenQuanYi Zen Hei', 'Source Han Sans SC', sans-serif";

function stripQuery(url) {
  const u = new URL(url);
  u.search = '';
  return decodeURI(u.href);
}

/** Vector TileJSON inlined into the style: one request fewer before the first tile. */
function inlineSource(source, tilejson) {
  return {
    type: 'vector',
    tiles: tilejson.tiles,
    minzoom: tilejson.minzoom ?? 0,
    maxzoom: tilejson.maxzoom ?? 14,
    ...(tilejson.bounds ? { bounds: tilejson.bounds } : {}),
  };
}

/** On a wall wider than 1920 CSS px (a 4K wall at device pixel ratio 1) labels, lines and
 * symbols grow with the width like the panels do, so they read from the same distance. */
function scaleForWall(style) {
  const scale = window.innerWidth / 1920;
  if (scale <= 1.2) return;
  const usesZoom = (v) => JSON.stringify(v).includes('"zoom"');
  const props = { layout: ['text-size'], paint: ['line-width', 'circle-radius',
    'circle-stroke-width', 'text-halo-width'] };
  for (const layer of style.layers) {
    for (const [kind, names] of Object.entries(props)) {
      for (const name of names) {
        const value = layer[kind]?.[name];
        if (value === undefined || usesZoom(value)) continue;
        layer[kind][name] = typeof value === 'number' ? value * scale : ['*', scale, value];
      }
    }
  }
}

export class ScreenMap {
  constructor(catalog) {
    this.catalog = catalog;
    this.map = null;
    this.version = 0; // bumped to refetch tiles after a layer changes
    this.run = null; // risk run shown (null = latest)
    this.tileBase = {}; // source id → tile URL template without query
    this._refreshTimer = null;
    this._holds = new Set();
    this._reloadWaiting = false;
    this._pendingRisk = false;
    this._popup = null;
  }

  /** Loads the style and creates the map; resolves when the map has loaded its style. */
  async start() {
    const { style, tilejsons } = await this._boot();
    const vector = Object.entries(style.sources).filter(([, s]) => s.type === 'vector' && s.url);
    let bounds = null;
    vector.forEach(([id, s]) => {
      const tj = tilejsons[id];
      if (!tj) return;
      style.sources[id] = inlineSource(s, tj);
      this.tileBase[id] = stripQuery(tj.tiles[0]);
      if (id === 'onemap' && tj.bounds) bounds = tj.bounds;
    });
    scaleForWall(style);
    const rem = REM();
    const options = {
      container: 'map',
      style,
      localIdeographFontFamily: LOCAL_CJK,
      attributionControl: false,
      fadeDuration: 0,
      maxZoom: 20,
      transformRequest: (url) => ({ url, headers: authHeaders(url) }),
    };
    if (bounds && bounds[2] - bounds[0] < 20) {
      options.bounds = [[bounds[0], bounds[1]], [bounds[2], bounds[3]]];
      options.fitBoundsOptions = {
        padding: { top: 4 * rem, bottom: 3 * rem, left: 25 * rem, right: 25 * rem },
      };
    }
    const map = new maplibregl.Map(options);
    this.map = map;
    // The first idle can come in the same frame as 'load': listen from the start.
    this.firstIdle = new Promise((resolve) => map.once('idle', resolve));
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
    map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');
    this._watchTiles();
    map.on('click', (e) => this._onClick(e));
    map.on('mousemove', (e) => {
      const hit = map.queryRenderedFeatures(e.point, { layers: this._clickable() }).length > 0;
      map.getCanvas().style.cursor = hit ? 'pointer' : '';
    });
    await new Promise((resolve) => map.once('load', resolve));
    this._loaded = true;
    if (this._warningCodes) this.showWarnings(this._warningCodes);
    this._buildSwitcher();
    return map;
  }

  /** The style and its vector TileJSONs: those the page started fetching early, else now. */
  async _boot() {
    try {
      if (window.onemapBoot) return await window.onemapBoot;
    } catch { /* fetched again below */ }
    const style = await getJSON('/styles/onemap.json');
    const vector = Object.entries(style.sources).filter(([, s]) => s.type === 'vector' && s.url);
    const pairs = await Promise.all(vector.map(async ([id, s]) => [id,
      await getJSON(s.url).catch(() => null)]));
    return { style, tilejsons: Object.fromEntries(pairs) };
  }

  /** A tile that fails marks the badge; the next tile that loads clears it. */
  _watchTiles() {
    this.map.on('error', (e) => {
      if (e.sourceId || e.tile) status.problem('tiles');
      else console.warn('map:', e.error?.message ?? e);
    });
    this.map.on('sourcedata', (e) => {
      if (e.tile && e.tile.state === 'loaded') status.clear('tiles');
    });
  }

  /** Style layers grouped by their switcher entry (metadata onemap:toggle). */
  _groups() {
    const groups = new Map();
    for (const layer of this.map.getStyle().layers) {
      const key = layer.metadata?.['onemap:toggle'];
      if (!key) continue;
      if (!groups.has(key)) groups.set(key, { key, layers: [], title: null, color: null });
      const g = groups.get(key);
      g.layers.push(layer.id);
      const title = layer.metadata[`onemap:title_${LANG}`];
      if (title && !g.title) g.title = title;
      if (!g.color && layer.paint) {
        const c = Object.entries(layer.paint).find(([k]) => /-color$/.test(k) && k !== 'circle-stroke-color');
        if (c) g.color = typeof c[1] === 'string' ? c[1] : c[1][c[1].length - 1];
      }
    }
    return [...groups.values()];
  }

  _buildSwitcher() {
    const ul = document.getElementById('layer-switcher');
    ul.replaceChildren();
    for (const g of this._groups()) {
      const visible = g.layers.some((id) => this.map.getLayoutProperty(id, 'visibility') !== 'none');
      const li = document.createElement('li');
      const label = document.createElement('label');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = visible;
      box.dataset.toggle = g.key;
      box.addEventListener('change', () => this.setVisible(g.key, box.checked));
      const sw = document.createElement('i');
      sw.className = 'sw';
      sw.style.background = g.color && g.color.startsWith('#') ? g.color : '#90a4ae';
      label.append(box, sw, document.createTextNode(g.title ?? g.key));
      li.append(label);
      ul.append(li);
    }
  }

  /** Shows or hides every style layer of a switcher entry (a catalog layer id, …). */
  setVisible(key, on) {
    const g = this._groups().find((x) => x.key === key);
    if (!g) return;
    for (const id of g.layers) this.map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
  }

  /** Visible style layers with a source layer (what a click can hit). */
  _clickable() {
    if (!this._loaded) return [];
    return this.map.getStyle().layers
      .filter((l) => l['source-layer'] && l.type !== 'symbol'
        && this.map.getLayoutProperty(l.id, 'visibility') !== 'none')
      .map((l) => l.id);
  }

  async _onClick(e) {
    const hits = this.map.queryRenderedFeatures(e.point, { layers: this._clickable() });
    if (!hits.length) return;
    // Points before lines before areas: the smallest thing under the cursor wins.
    const rank = { circle: 0, line: 1, fill: 2 };
    hits.sort((a, b) => (rank[a.layer.type] ?? 3) - (rank[b.layer.type] ?? 3));
    const f = hits[0];
    if (this._popup) this._popup.remove();
    const node = document.createElement('div');
    node.className = 'popup';
    node.textContent = t('popup_loading');
    this._popup = new maplibregl.Popup({ maxWidth: `${24 * REM()}px` })
      .setLngLat(e.lngLat).setDOMContent(node).addTo(this.map);
    const content = await popupContent(f, this.catalog);
    node.replaceChildren(content);
  }

  /** Re-reads the tiles of `sourceId` (after a change on the server). */
  _reload(sourceId) {
    const src = this.map?.getSource(sourceId);
    const base = this.tileBase[sourceId];
    if (!src || !base || typeof src.setTiles !== 'function') return;
    const params = new URLSearchParams();
    if (sourceId === 'risk' && this.run !== null) params.set('run', String(this.run));
    params.set('v', String(this.version));
    src.setTiles([`${base}?${params}`]);
  }

  /** Tile reloads wait until `promise` settles (a panel that must show first). */
  hold(promise) {
    this._holds.add(promise);
    promise.finally(() => {
      this._holds.delete(promise);
      if (!this._holds.size && this._reloadWaiting) {
        this._reloadWaiting = false;
        this.refreshTiles();
      }
    });
    return promise;
  }

  /** Refetch the vector tiles soon (batched: many layer changes in a burst → one reload). */
  refreshTiles({ risk = false } = {}) {
    this._pendingRisk = this._pendingRisk || risk;
    if (this._refreshTimer) return;
    this._refreshTimer = setTimeout(() => {
      this._refreshTimer = null;
      if (this._holds.size) {
        this._reloadWaiting = true;
        return;
      }
      this.version += 1;
      this._reload('onemap');
      if (this._pendingRisk) this._reload('risk');
      this._pendingRisk = false;
    }, 200);
  }

  /** After an outage: every source, rasters included, is read again. */
  refreshAll() {
    if (!this.map) return;
    this.refreshTiles({ risk: true });
    for (const id of ['hillshade', 'dem']) {
      const src = this.map.getSource(id);
      if (src && typeof src.reload === 'function') src.reload();
    }
  }

  /** Draws only the warnings in `codes` (the active list): a lifted or expired warning
   * leaves the map at once, without waiting for tiles. */
  showWarnings(codes) {
    this._warningCodes = codes;
    if (!this._loaded) return;
    const filter = ['all', ['==', ['get', 'status'], 'active'],
      ['in', ['get', 'code'], ['literal', codes]]];
    for (const id of ['warnings-fill', 'warnings-outline']) {
      if (this.map.getLayer(id)) this.map.setFilter(id, filter);
    }
  }

  /** Shows the H3 risk cells of run `id` (null = the latest finished run). */
  showRun(id) {
    this.run = id;
    this.version += 1;
    this._reload('risk');
  }

  /** Flies to a GeoJSON geometry (a warning's area). */
  fitGeometry(geometry) {
    const box = [Infinity, Infinity, -Infinity, -Infinity];
    const walk = (c) => {
      if (typeof c[0] === 'number') {
        box[0] = Math.min(box[0], c[0]); box[1] = Math.min(box[1], c[1]);
        box[2] = Math.max(box[2], c[0]); box[3] = Math.max(box[3], c[1]);
      } else c.forEach(walk);
    };
    if (!geometry?.coordinates) return;
    walk(geometry.coordinates);
    if (!Number.isFinite(box[0])) return;
    const rem = REM();
    this.map.fitBounds([[box[0], box[1]], [box[2], box[3]]], {
      padding: { top: 5 * rem, bottom: 4 * rem, left: 26 * rem, right: 26 * rem },
      maxZoom: 15, duration: 800,
    });
  }
}

/** The legend's share of the district at each level, from a run summary (cells per level). */
export function showShares(summary) {
  const total = summary && summary.cells > 0 ? summary.cells : null;
  for (const el of document.querySelectorAll('#legend [data-share]')) {
    const n = total === null ? null : summary.by_level?.[el.dataset.share];
    el.textContent = typeof n === 'number' ? pct(n / total) : '—';
  }
}

/** Fills the run selector from GET /risk/runs; calls `onChange(id | null)` on a choice. */
export async function loadRuns(select, info, onChange) {
  let runs = null;
  try {
    const body = await getJSON('/risk/runs');
    runs = Array.isArray(body) ? body : body.runs ?? body.items ?? body.features ?? [];
  } catch {
    runs = null;
  }
  const chosen = select.value;
  select.replaceChildren();
  const latest = document.createElement('option');
  latest.value = '';
  latest.textContent = t('latest_run');
  select.append(latest);
  if (runs === null) {
    info.textContent = `/risk/runs ${t('unavailable')}`;
    select.disabled = true;
    return;
  }
  select.disabled = false;
  for (const run of runs.slice(0, 30)) {
    const r = run.properties ?? run;
    const opt = document.createElement('option');
    opt.value = String(r.id);
    const model = t(`model_${r.model}`);
    const state = t(`run_status_${r.status}`);
    opt.textContent = `#${r.id} ${model} · ${when(r.created_at ?? r.started_at)} · ${state}`;
    if (r.status && r.status !== 'done') opt.disabled = true;
    select.append(opt);
  }
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  const shown = runs.find((r) => String((r.properties ?? r).id) === select.value)
    ?? runs.find((r) => (r.properties ?? r).status === 'done');
  const s = shown ? (shown.properties ?? shown).summary : null;
  showShares(s);
  if (s && typeof s === 'object' && s.by_level) {
    const parts = ['red', 'orange', 'yellow', 'blue']
      .filter((l) => typeof s.by_level[l] === 'number')
      .map((l) => `${t(`level_${l}`)} ${num(s.by_level[l])}`);
    info.textContent = `${parts.join(' · ')} (${t('cells')})`;
  } else {
    info.textContent = runs.length ? '—' : t('unavailable');
  }
  select.onchange = () => {
    const picked = runs.find((r) => String((r.properties ?? r).id) === select.value)
      ?? runs.find((r) => (r.properties ?? r).status === 'done');
    showShares(picked ? (picked.properties ?? picked).summary : null);
    onChange(select.value === '' ? null : Number(select.value));
  };
}
