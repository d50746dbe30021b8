// Texts of the screen in Simplified Chinese (default) and English (?lang=en).

const TEXTS = {
  zh: {
    title: '一张图 · 应急指挥中心',
    kpi: '态势概览',
    active_warnings: '生效预警',
    exposed_population: '受影响人口',
    open_incidents: '待处置事件',
    camera_coverage: '重点场所视频覆盖率',
    warnings_by_level: '预警等级分布',
    cameras: '视频监控',
    cameras_online: '在线',
    cameras_offline: '离线',
    layer_counts: '图层要素',
    active_warning_list: '生效预警',
    risk_run: '风险研判批次',
    latest_run: '最新批次',
    layers: '图层',
    risk_legend: '风险等级',
    share_of_district: '（占辖区面积）',
    level_blue: '蓝色', level_yellow: '黄色', level_orange: '橙色', level_red: '红色',
    warning_suffix: '预警',
    hazard_landslide: '地质灾害', hazard_flood: '洪涝', hazard_rainstorm: '暴雨',
    model_landslide: '滑坡', model_flood: '洪涝',
    valid_to: '有效至',
    issued_by: '发布',
    exp_population: '人口', exp_addresses: '地址', exp_key_sites: '重点场所',
    exp_venues: '场所', exp_grids: '网格', exp_cameras_online: '在线视频',
    exp_shelters: '避难场所',
    no_warnings: '当前无生效预警',
    status_live: '实时连接',
    status_connecting: '连接中…',
    status_reconnecting: '连接中断，正在重连…',
    status_server_down: '服务器不可达',
    status_tiles_down: '地图瓦片不可达',
    status_db_down: '数据库不可用',
    toast_warning_issued: '发布预警',
    lm_ack: '叫应',
    lm_to_move: '待转移',
    lm_vulnerable: '重点人员',
    toast_warning_lifted: '解除预警',
    toast_incident: '新事件上报',
    toast_overdue: '事件超时未办结',
    overdue: '超时',
    on_time: '按时办结',
    toast_run: '风险研判完成',
    run_status_done: '完成', run_status_failed: '失败', run_status_pending: '排队',
    run_status_running: '计算中',
    cells: '格网',
    popup_masked: '部分敏感字段仅对授权角色显示',
    popup_loading: '加载中…',
    today: '今日',
    unavailable: '暂不可用',
  },
  en: {
    title: 'OneMap · Emergency Command Centre',
    kpi: 'Overview',
    active_warnings: 'Active warnings',
    exposed_population: 'People exposed',
    open_incidents: 'Open incidents',
    camera_coverage: 'Key sites seen by cameras',
    warnings_by_level: 'Warnings by level',
    cameras: 'Cameras',
    cameras_online: 'online',
    cameras_offline: 'offline',
    layer_counts: 'Features per layer',
    active_warning_list: 'Active warnings',
    risk_run: 'Risk run',
    latest_run: 'Latest run',
    layers: 'Layers',
    risk_legend: 'Risk level',
    share_of_district: '(share of the district)',
    level_blue: 'Blue', level_yellow: 'Yellow', level_orange: 'Orange', level_red: 'Red',
    warning_suffix: 'warning',
    hazard_landslide: 'Landslide', hazard_flood: 'Flood', hazard_rainstorm: 'Rainstorm',
    model_landslide: 'Landslide', model_flood: 'Flood',
    valid_to: 'valid to',
    issued_by: 'by',
    exp_population: 'people', exp_addresses: 'addresses', exp_key_sites: 'key sites',
    exp_venues: 'venues', exp_grids: 'grids', exp_cameras_online: 'cameras on',
    exp_shelters: 'shelters',
    no_warnings: 'No active warning',
    status_live: 'Live',
    status_connecting: 'Connecting…',
    status_reconnecting: 'Connection lost, reconnecting…',
    status_server_down: 'Server unreachable',
    status_tiles_down: 'Map tiles unreachable',
    status_db_down: 'Database unavailable',
    toast_warning_issued: 'Warning issued',
    lm_ack: 'Acknowledged',
    lm_to_move: 'To move',
    lm_vulnerable: 'vulnerable',
    toast_warning_lifted: 'Warning lifted',
    toast_incident: 'Incident reported',
    toast_overdue: 'Incident overdue',
    overdue: 'overdue',
    on_time: 'on time',
    toast_run: 'Risk run finished',
    run_status_done: 'done', run_status_failed: 'failed', run_status_pending: 'pending',
    run_status_running: 'running',
    cells: 'cells',
    popup_masked: 'Some sensitive fields are shown to authorised roles only',
    popup_loading: 'Loading…',
    today: 'today',
    unavailable: 'unavailable',
  },
};

export const LANG = new URLSearchParams(location.search).get('lang') === 'en' ? 'en' : 'zh';
const LOCALE = LANG === 'en' ? 'en-GB' : 'zh-CN';

/** The text called `key` in the page language (the key itself when missing). */
export function t(key) {
  return TEXTS[LANG][key] ?? TEXTS.zh[key] ?? key;
}

/** A count with thousands separators, or "—" for a missing value. */
export function num(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return '—';
  return Number(value).toLocaleString(LOCALE, { maximumFractionDigits: digits });
}

/** A share in [0, 1] as a percentage, or "—". */
export function pct(value) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return '—';
  return `${(Number(value) * 100).toFixed(1)}%`;
}

/** An ISO timestamp as local date and time (no seconds). */
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(LOCALE, { month: '2-digit', day: '2-digit', hour: '2-digit',
    minute: '2-digit', hour12: false });
}

/** Fills every element with a data-i18n attribute. */
export function translatePage() {
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  const sw = document.getElementById('lang-switch');
  const params = new URLSearchParams(location.search);
  if (LANG === 'en') params.delete('lang'); else params.set('lang', 'en');
  const qs = params.toString();
  sw.href = `${location.pathname}${qs ? `?${qs}` : ''}${location.hash}`;
  sw.textContent = LANG === 'en' ? '中文' : 'EN';
}
