// The popup of a clicked feature.  Attributes come from the server (OGC API Features, the
// warnings and risk APIs), which omits sensitive fields for roles that may not see them;
// the popup says so instead of showing a blank.
import { getJSON } from './api.js';
import { LANG, num, pct, t, when } from './i18n.js';

// Chinese labels of common properties (the catalog's descriptions are in English).
const ZH = {
  code: '编码', name: '名称', level: '等级', status: '状态', kind: '类型', category: '类别',
  capacity: '容纳人数', grid_code: '所属网格', address_code: '标准地址编码',
  community_code: '所属社区', worker_name: '网格员', worker_phone: '网格员电话',
  households: '户数', population: '人口', full_address: '标准地址', floors: '层数', use: '用途',
  key_site: '重点场所', heading_deg: '朝向 (°)', fov_deg: '视场角 (°)', range_m: '视距 (m)',
  threat_people: '威胁人数', threat_property: '威胁财产 (万元)', class: '等级', members: '人数',
  specialty: '专长', contact: '联系方式', unit: '单位', description: '描述',
  reported_at: '上报时间', reporter: '上报人', hazard: '灾种', valid_from: '生效时间',
  valid_to: '截止时间', issued_by: '发布人', run_id: '研判批次', parent_code: '上级编码',
  road: '道路', community: '社区', street: '街道', district: '区县', title: '标题',
  score: '风险得分', cells: '格网数', res: 'H3 分辨率', h3: 'H3 编码',
  susceptibility: '易发性', rain_mm_1h: '1 小时雨量 (mm)', rain_mm_24h: '24 小时雨量 (mm)',
  antecedent_re_mm: '前期有效雨量 (mm)', cma_signal: '暴雨预警信号', rule: '判定规则',
};

function label(name) {
  if (LANG === 'zh' && ZH[name]) return ZH[name];
  return name;
}

function show(value) {
  if (value === null || value === undefined || value === '') return '—';
  if (typeof value === 'boolean') return value ? '✓' : '✗';
  if (typeof value === 'number') return num(value, 3);
  if (typeof value === 'object') return JSON.stringify(value);
  if (/^\d{4}-\d\d-\d\dT/.test(value)) return when(value);
  return String(value);
}

function table(rows) {
  const tbl = document.createElement('table');
  for (const [k, v, title] of rows) {
    const tr = tbl.insertRow();
    const kc = tr.insertCell();
    kc.className = 'k';
    kc.textContent = k;
    if (title) kc.title = title;
    tr.insertCell().textContent = v;
  }
  return tbl;
}

function box(title, ...children) {
  const div = document.createElement('div');
  const h = document.createElement('h3');
  h.textContent = title;
  div.append(h, ...children);
  return div;
}

function note(text) {
  const p = document.createElement('div');
  p.className = 'note';
  p.textContent = text;
  return p;
}

async function riskPopup(p) {
  const rows = [[label('level'), show(p.level)], [label('score'), show(p.score)],
    [label('h3'), show(p.h3)], [label('res'), show(p.res)], [label('run_id'), show(p.run_id)]];
  if (p.cells > 1) {
    rows.push([label('cells'), show(p.cells)]);
    // a rolled-up hexagon: how much of it is at or above each level (its colour is the
    // level at least half of it reaches)
    for (const l of ['red', 'orange', 'yellow', 'blue']) {
      const share = p[`share_${l}`];
      if (typeof share === 'number') rows.push([`≥ ${t(`level_${l}`)}`, pct(share)]);
    }
  }
  const out = box(t('risk_legend'), table(rows));
  if (p.h3 && !(p.cells > 1)) {
    try {
      const cell = await getJSON(`/risk/cells/${encodeURIComponent(p.h3)}?run=${Number(p.run_id)}`);
      const ex = cell.explanation ?? {};
      const more = [];
      if (ex.model) more.push([t('risk_run'), t(`model_${ex.model}`)]);
      if (ex.susceptibility_name) more.push([label('susceptibility'), ex.susceptibility_name]);
      if (ex.rain) {
        for (const k of ['rain_mm_1h', 'rain_mm_24h', 'antecedent_re_mm', 'cma_signal']) {
          if (ex.rain[k] !== undefined) more.push([label(k), show(ex.rain[k])]);
        }
      }
      for (const f of (ex.top_factors ?? []).slice(0, 4)) more.push([f.factor, show(f.value)]);
      if (ex.rule) more.push([label('rule'), ex.rule]);
      if (more.length) out.append(table(more));
    } catch {
      out.append(note(`/risk/cells ${t('unavailable')}`));
    }
  }
  return out;
}

async function warningPopup(p) {
  let props = p;
  try {
    props = (await getJSON(`/warnings/${encodeURIComponent(p.code)}`)).properties ?? p;
  } catch { /* the tile's own attributes are shown */ }
  const title = `${t(`hazard_${props.hazard}`)} ${t(`level_${props.level}`)}${t('warning_suffix')}`;
  const rows = ['code', 'status', 'valid_from', 'valid_to', 'issued_by', 'run_id']
    .map((k) => [label(k), show(props[k])]);
  const s = props.exposure?.summary ?? props.exposure ?? {};
  for (const k of ['population', 'addresses', 'key_sites', 'venues', 'grids', 'cameras_online',
    'shelters']) {
    if (s[k] !== undefined) rows.push([t(`exp_${k}`), num(s[k])]);
  }
  return box(props.title || title, table(rows));
}

async function featurePopup(layerId, p, catalog) {
  const meta = catalog[layerId];
  const title = meta ? meta[`title_${LANG}`] : layerId;
  if (p.point_count > 1 || !p.code) {
    return box(title, table([['#', num(p.point_count ?? 1)]]));
  }
  let props = p;
  let fetched = false;
  try {
    const f = await getJSON(`/collections/${encodeURIComponent(layerId)}/items/${encodeURIComponent(p.code)}`);
    props = f.properties ?? p;
    fetched = true;
  } catch { /* fall back to the tile's attributes */ }
  const rows = [];
  let masked = false;
  for (const prop of meta?.properties ?? Object.keys(props).map((name) => ({ name }))) {
    if (prop.name in props) {
      if (props[prop.name] !== null) rows.push([label(prop.name), show(props[prop.name]), prop.description]);
    } else if (prop.sensitive && fetched) {
      masked = true;
      rows.push([label(prop.name), '🔒', prop.description]);
    }
  }
  const out = box(props.name || title, table(rows));
  if (masked) out.append(note(t('popup_masked')));
  return out;
}

/** The popup body of a rendered feature `f` (from queryRenderedFeatures). */
export async function popupContent(f, catalog) {
  try {
    if (f.sourceLayer === 'risk') return await riskPopup(f.properties);
    if (f.sourceLayer === 'warnings') return await warningPopup(f.properties);
    return await featurePopup(f.sourceLayer, f.properties, catalog);
  } catch (err) {
    return note(String(err));
  }
}
