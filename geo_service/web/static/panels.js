// Side panels: KPIs and charts from GET /stats/summary, the active warnings from
// GET /warnings.  An endpoint that does not answer leaves "—" (and the badge says why).
import { getJSON } from './api.js';
import { LANG, num, pct, t, when } from './i18n.js';

const LEVELS = ['blue', 'yellow', 'orange', 'red'];
const LEVEL_COLORS = { blue: '#1e88e5', yellow: '#fdd835', orange: '#fb8c00', red: '#e53935' };
const SEVERITY = { red: 4, orange: 3, yellow: 2, blue: 1 };

let echartsModule = null;
const charts = {};

async function echarts() {
  // Loaded after the map so it never delays the first frame.
  echartsModule ??= import('/vendor/echarts/dist/echarts.esm.min.mjs');
  return echartsModule;
}

async function chart(id) {
  if (charts[id]) return charts[id];
  const lib = await echarts();
  const el = document.getElementById(id);
  charts[id] = lib.init(el, null, { renderer: 'canvas' });
  return charts[id];
}

export function resizeCharts() {
  for (const c of Object.values(charts)) c.resize();
}

const TEXT_STYLE = () => ({ color: '#90a4ae', fontSize: Math.round(window.innerWidth / 160) });

async function drawLevels(byLevel) {
  const c = await chart('chart-levels');
  c.setOption({
    animation: false,
    grid: { left: '4%', right: '4%', top: '12%', bottom: '4%', containLabel: true },
    xAxis: { type: 'category', data: LEVELS.map((l) => t(`level_${l}`)),
      axisLabel: TEXT_STYLE(), axisLine: { lineStyle: { color: '#37474f' } } },
    yAxis: { type: 'value', minInterval: 1, axisLabel: TEXT_STYLE(),
      splitLine: { lineStyle: { color: '#1c2a3a' } } },
    series: [{
      type: 'bar', barWidth: '45%',
      data: LEVELS.map((l) => ({ value: byLevel?.[l] ?? 0, itemStyle: { color: LEVEL_COLORS[l] } })),
      label: { show: true, position: 'top', color: '#e3f2fd',
        fontSize: Math.round(window.innerWidth / 140) },
    }],
  });
}

async function drawCameras(cameras) {
  const c = await chart('chart-cameras');
  const online = cameras?.online ?? 0;
  const offline = cameras?.offline ?? 0;
  c.setOption({
    animation: false,
    title: { text: pct(cameras?.online_rate), left: 'center', top: 'center',
      textStyle: { color: '#e3f2fd', fontSize: Math.round(window.innerWidth / 90) } },
    legend: { bottom: 0, textStyle: TEXT_STYLE(), itemWidth: 10, itemHeight: 10 },
    series: [{
      type: 'pie', radius: ['52%', '75%'], center: ['50%', '45%'], label: { show: false },
      data: [
        { name: `${t('cameras_online')} ${num(online)}`, value: online,
          itemStyle: { color: '#26c6da' } },
        { name: `${t('cameras_offline')} ${num(offline)}`, value: offline,
          itemStyle: { color: '#546e7a' } },
      ],
    }],
  });
}

function setText(id, text) {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

/** KPIs, charts and layer counts from /stats/summary; resolves to the summary or null. */
export async function refreshStats(catalog) {
  let s = null;
  try {
    s = await getJSON('/stats/summary');
  } catch {
    s = null;
  }
  setText('kpi-warnings', num(s?.warnings?.active));
  setText('kpi-population', num(s?.exposed_population));
  const inc = s?.incidents;
  setText('kpi-incidents', inc ? `${num(inc.open)}` : '—');
  const sla = document.getElementById('kpi-incidents-sla');
  if (sla) {
    const overdue = inc?.overdue ?? null;
    sla.dataset.overdue = overdue === null ? '' : String(overdue);
    sla.dataset.onTime = inc?.on_time_rate == null ? '' : String(inc.on_time_rate);
    sla.textContent = inc ? `${t('overdue')} ${num(overdue)} · ${t('on_time')} ${pct(inc.on_time_rate)}` : '—';
    sla.classList.toggle('late', (overdue ?? 0) > 0);
  }
  setText('kpi-coverage', pct(s?.camera_coverage));
  const cams = s?.cameras;
  setText('cameras-text', cams ? `${num(cams.online)} / ${num((cams.online ?? 0) + (cams.offline ?? 0))}` : '—');
  const items = Object.entries(s?.layers ?? {}).map(([layer, count]) => {
    const div = document.createElement('div');
    div.className = 'count';
    const name = document.createElement('span');
    name.textContent = catalog[layer]?.[`title_${LANG}`] ?? layer;
    const n = document.createElement('b');
    n.textContent = num(count);
    div.append(name, n);
    return div;
  });
  const box = document.getElementById('layer-counts');
  if (items.length) box.replaceChildren(...items);
  else box.textContent = '—';
  await Promise.all([drawLevels(s?.warnings?.by_level), drawCameras(cams)]);
  return s;
}

function warningItem(f, isNew, onPick) {
  const p = f.properties;
  const li = document.createElement('li');
  li.className = `warning lvl-${p.level}${isNew ? ' new' : ''}`;
  li.dataset.warningCode = p.code;
  li.dataset.level = p.level;
  const head = document.createElement('div');
  head.className = 'head';
  const name = document.createElement('span');
  name.className = 'tag';
  name.textContent = p.title
    || `${t(`hazard_${p.hazard}`)} ${t(`level_${p.level}`)}${t('warning_suffix')}`;
  const code = document.createElement('small');
  code.textContent = p.code;
  head.append(name, code);
  const meta = document.createElement('div');
  meta.className = 'meta';
  meta.textContent = `${t('valid_to')} ${when(p.valid_to)} · ${t('issued_by')} ${p.issued_by ?? '—'}`;
  const exp = document.createElement('div');
  exp.className = 'exposure';
  const s = p.exposure ?? {};
  for (const k of ['population', 'addresses', 'key_sites', 'grids', 'cameras_online', 'shelters']) {
    const cell = document.createElement('span');
    const b = document.createElement('b');
    b.textContent = num(s[k]);
    cell.append(b, document.createElement('br'), t(`exp_${k}`));
    exp.append(cell);
  }
  li.append(head, meta, exp, lastMile(p.last_mile));
  li.addEventListener('click', () => onPick(f));
  return li;
}

/** 叫应 and transfers: the share of recipients who acknowledged, vulnerable residents to move. */
function lastMile(m) {
  const box = document.createElement('div');
  box.className = 'last-mile';
  const ack = document.createElement('div');
  ack.className = 'ack';
  const bar = document.createElement('span');
  bar.className = 'bar';
  const fill = document.createElement('i');
  bar.append(fill);
  const ackText = document.createElement('span');
  ackText.className = 'ack-text';
  ack.append(ackText, bar);
  const move = document.createElement('div');
  move.className = 'to-move';
  box.append(ack, move);
  box.update = (acknowledged, recipients, toMove, vulnerable) => {
    const share = recipients ? acknowledged / recipients : null;
    box.dataset.acknowledged = String(acknowledged ?? 0);
    box.dataset.recipients = String(recipients ?? 0);
    box.dataset.toMove = String(toMove ?? 0);
    ackText.textContent = `${t('lm_ack')} ${num(acknowledged)}/${num(recipients)} ${pct(share)}`;
    fill.style.width = `${Math.round((share ?? 0) * 100)}%`;
    move.textContent = `${t('lm_to_move')} ${num(toMove)} / ${t('lm_vulnerable')} ${num(vulnerable)}`;
  };
  box.update(m?.acknowledged ?? 0, m?.recipients ?? 0, m?.to_move ?? 0, m?.vulnerable ?? 0);
  box.state = { ...(m ?? {}) };
  return box;
}

/** Apply a warning_acked or resident_status event to the panel at once (before re-reading). */
export function applyLastMile(type, data) {
  const li = document.querySelector(`li.warning[data-warning-code="${CSS.escape(data.code ?? '')}"]`);
  const box = li?.querySelector('.last-mile');
  if (!box) return false;
  const st = box.state;
  if (type === 'warning_acked') {
    st.acknowledged = data.acknowledged;
    st.recipients = data.recipients;
  } else if (type === 'resident_status') {
    st.to_move = data.to_move;
    st.vulnerable = data.vulnerable;
  }
  box.update(st.acknowledged ?? 0, st.recipients ?? 0, st.to_move ?? 0, st.vulnerable ?? 0);
  return true;
}

const seen = new Set();
/** Warning code → when it was first painted on this screen (epoch ms). */
export const shownAt = new Map();
let firstList = true;

/** The active-warnings panel from /warnings?status=active; resolves to the features or null. */
export async function refreshWarnings(onPick) {
  let fc = null;
  try {
    fc = await getJSON('/warnings?status=active');
  } catch {
    fc = null;
  }
  const list = document.getElementById('warning-list');
  if (!fc) {
    setText('warnings-count', '—');
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = `/warnings ${t('unavailable')}`;
    list.replaceChildren(li);
    return null;
  }
  const features = [...(fc.features ?? [])].sort((a, b) =>
    (SEVERITY[b.properties.level] ?? 0) - (SEVERITY[a.properties.level] ?? 0)
    || String(b.properties.valid_from).localeCompare(String(a.properties.valid_from)));
  setText('warnings-count', num(features.length));
  if (!features.length) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = t('no_warnings');
    list.replaceChildren(li);
  } else {
    list.replaceChildren(...features.map((f) =>
      warningItem(f, !firstList && !seen.has(f.properties.code), onPick)));
  }
  const fresh = features.filter((f) => !seen.has(f.properties.code)).map((f) => f.properties.code);
  if (fresh.length) {
    // When each warning was first painted (epoch ms): the next frame after the DOM change.
    requestAnimationFrame(() => {
      const at = Date.now();
      for (const code of fresh) shownAt.set(code, at);
      while (shownAt.size > 200) shownAt.delete(shownAt.keys().next().value);
    });
  }
  if (seen.size > 5000) seen.clear();
  for (const f of features) seen.add(f.properties.code);
  firstList = false;
  return features;
}
