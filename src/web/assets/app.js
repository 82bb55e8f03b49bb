// outdial web console: a single page over the REST API (/v1) and the live event stream.
// No build step, no framework: hash routes (#/monitor, #/campaigns/3, …), one view at a time,
// each view returning a cleanup function. See docs/console.md.
'use strict';

// ---------- small helpers ----------

/** Creates an element: h('div', {class: 'x', onclick: f, 'data-stat': 'a'}, child, …). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const pct = (x) => (Number.isFinite(x) ? (x * 100).toFixed(1) + ' %' : '–');
const num = (x) => (Number.isFinite(x) ? String(x) : '–');

/** Milliseconds as "1 h 02 min", "3 min 05 s", "12 s". */
function dur(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min ' + String(s % 60).padStart(2, '0') + ' s';
  return Math.floor(m / 60) + ' h ' + String(m % 60).padStart(2, '0') + ' min';
}

const ROLES = { agent: 0, supervisor: 1, admin: 2, owner: 3 };
/** True when the signed-in token's role is at least `role`. */
const can = (role) => S.me && ROLES[S.me.role] >= ROLES[role];

/** The console's state: the token (kept for this browser tab only) and who it is. */
const S = {
  token: sessionStorage.getItem('outdial.token'),
  me: null,
  cleanup: null,
};

class ApiError extends Error {
  constructor(status, detail, field) {
    super(detail);
    this.status = status;
    this.field = field || null;
  }
}

/**
 * Calls the API: JSON in and out, or `type` for a raw body (a CSV upload), `raw` for the
 * Response itself. Errors: ApiError with the problem document's `detail` and `field`.
 */
async function api(method, path, body, opts = {}) {
  const headers = { Authorization: 'Bearer ' + S.token };
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = opts.type || 'application/json';
    payload = opts.type ? body : JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body: payload });
  if (!r.ok) {
    let p = {};
    try { p = await r.json(); } catch (_) { /* not JSON */ }
    if (r.status === 401 && path !== '/v1/me') signOut('The service refused the token: sign in again.');
    throw new ApiError(r.status, p.detail || r.statusText || String(r.status), p.field);
  }
  if (opts.raw) return r;
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

/** Shows `msg` in the banner (kind: 'error' or 'ok'); an empty message hides it. */
function banner(msg, kind = 'error') {
  const b = document.getElementById('banner');
  b.textContent = msg || '';
  b.className = kind;
  b.hidden = !msg;
}

/** Runs `f`, showing its ApiError (or any error) in the banner; returns its result. */
async function attempt(f) {
  try {
    const r = await f();
    return r;
  } catch (e) {
    banner(e.message);
    return undefined;
  }
}

// ---------- the live stream (SSE over fetch: EventSource cannot send the token) ----------

/**
 * One connection to GET /v1/events for the whole console. Keeps the calls in progress
 * (callId → {campaignId, state, number, since}) from the call events, and tells the
 * listeners every envelope. Reconnects with Last-Event-ID.
 */
const Live = {
  calls: new Map(),
  ended: new Set(),
  listeners: new Set(),
  lastId: null,
  abort: null,
  connected: false,
  // Call event type → the monitor's call state (events not listed keep the state).
  STATE: {
    initiated: 'dialling', trying: 'dialling', ringing: 'ringing', early_media: 'ringing',
    progress: 'ringing', answered: 'answered', amd: 'answered', beep: 'answered',
    accepting: 'answered', ivr_entered: 'answered', playback_started: 'answered',
    queued: 'queued', agent_offered: 'queued', offer_failed: 'queued', connected: 'connected',
  },

  start() {
    if (this.abort) return;
    this.abort = new AbortController();
    this.run(this.abort.signal);
  },

  stop() {
    if (this.abort) this.abort.abort();
    this.abort = null;
    this.calls.clear();
    this.ended.clear();
    this.connected = false;
  },

  async run(signal) {
    while (!signal.aborted) {
      try {
        const headers = { Authorization: 'Bearer ' + S.token };
        if (this.lastId) headers['Last-Event-ID'] = this.lastId;
        const r = await fetch('/v1/events', { headers, signal });
        if (!r.ok) throw new Error('stream ' + r.status);
        this.connected = true;
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            this.block(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (_) {
        if (signal.aborted) return;
      }
      this.connected = false;
      await new Promise((res) => setTimeout(res, 2000));
    }
  },

  /** One SSE block: `id:`, `event:`, `data:` lines. */
  block(text) {
    let data = '';
    for (const line of text.split('\n')) {
      if (line.startsWith('id:')) this.lastId = line.slice(3).trim();
      else if (line.startsWith('data:')) data += line.slice(5).trim();
    }
    if (!data) return;
    let env;
    try { env = JSON.parse(data); } catch (_) { return; }
    this.track(env);
    for (const f of this.listeners) f(env);
  },

  track(env) {
    const p = env.payload || {};
    const kind = p.event && p.event.type;
    if (env.type !== 'DIALER.CALL_STATUS' || !p.callId || !kind) return;
    if (this.ended.has(p.callId)) return; // events after the end (statistics, sync)
    if (kind === 'terminated') {
      this.calls.delete(p.callId);
      this.ended.add(p.callId);
      if (this.ended.size > 10000) this.ended.delete(this.ended.values().next().value);
      return;
    }
    const state = this.STATE[kind];
    if (state) {
      this.calls.set(p.callId, { campaignId: p.campaignId, number: p.number, state, since: Date.now() });
    }
  },

  /**
   * Reconciles with the store's calls in progress (GET /v1/calls?status=live): calls the
   * stream has not told about (a page opened mid-call) are added, calls no longer live removed.
   */
  async reconcile(campaignId) {
    const q = campaignId ? '&campaignId=' + campaignId : '';
    const live = await api('GET', '/v1/calls?status=live&limit=1000' + q);
    const ids = new Set();
    for (const c of live) {
      ids.add(c.callId);
      if (!this.calls.has(c.callId) && !this.ended.has(c.callId)) {
        const state = c.answeredAt ? 'answered' : c.ringingAt ? 'ringing' : 'dialling';
        this.calls.set(c.callId, { campaignId: c.campaignId, number: c.number, state, since: Date.now() });
      }
    }
    for (const [id, c] of this.calls) {
      const mine = !campaignId || c.campaignId === campaignId;
      if (mine && !ids.has(id) && Date.now() - c.since > 3000) this.calls.delete(id);
    }
  },

  /** Calls in progress by state, for one campaign or all. */
  byState(campaignId) {
    const n = { dialling: 0, ringing: 0, answered: 0, queued: 0, connected: 0 };
    for (const c of this.calls.values()) {
      if (!campaignId || c.campaignId === campaignId) n[c.state] += 1;
    }
    return n;
  },
};

// ---------- sign-in, navigation, routes ----------

function signOut(msg) {
  sessionStorage.removeItem('outdial.token');
  S.token = null;
  S.me = null;
  Live.stop();
  location.hash = '#/';
  route();
  if (msg) banner(msg);
}

function viewSignIn(main) {
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', placeholder: 'odt_…', size: 60 });
  const error = h('p', { id: 'signin-error', class: 'error' });
  const form = h('form', {
    id: 'signin',
    onsubmit: async (ev) => {
      ev.preventDefault();
      S.token = input.value.trim();
      try {
        S.me = await api('GET', '/v1/me');
      } catch (e) {
        S.token = null;
        error.textContent = e.message;
        return;
      }
      sessionStorage.setItem('outdial.token', S.token);
      location.hash = home();
      route();
    },
  },
  h('h1', {}, 'Sign in'),
  h('p', {}, 'An API token (', h('code', {}, 'outdial token create --role supervisor'), '): its role decides what this console offers.'),
  h('label', {}, 'Token ', input), ' ', h('button', { type: 'submit' }, 'Sign in'), error);
  main.append(form);
  input.focus();
}

/** The first page for the signed-in role. */
const home = () => (can('supervisor') ? '#/monitor' : '#/me');

function renderNav() {
  const nav = document.getElementById('nav');
  nav.replaceChildren();
  document.getElementById('who').textContent = S.me ? S.me.role + (S.me.agent ? ' ' + S.me.agent : '') : '';
  document.getElementById('signout').hidden = !S.me;
  if (!S.me) return;
  const links = [];
  if (can('supervisor')) {
    links.push(['#/monitor', 'Monitor'], ['#/campaigns', 'Campaigns'], ['#/lists', 'Call lists'],
      ['#/agents', 'Agents'], ['#/dnc', 'Do not call']);
  }
  if (S.me.agent) links.push(['#/me', 'My console']);
  const here = location.hash.split('/')[1] || '';
  for (const [href, text] of links) {
    nav.append(h('a', { href, class: href.split('/')[1] === here ? 'here' : null }, text));
  }
  nav.append(h('a', { href: '/docs', target: '_blank' }, 'API docs'));
}

async function route() {
  if (S.cleanup) { S.cleanup(); S.cleanup = null; }
  banner('');
  const main = document.getElementById('main');
  main.replaceChildren();
  if (S.token && !S.me) {
    try { S.me = await api('GET', '/v1/me'); } catch (_) { S.token = null; sessionStorage.removeItem('outdial.token'); }
  }
  renderNav();
  if (!S.me) { viewSignIn(main); return; }
  Live.start();
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const id = parts[1] ? Number(parts[1]) : null;
  const views = {
    monitor: () => viewMonitor(main, id),
    campaigns: () => (parts[1] === 'new' ? viewCampaignForm(main, null)
      : parts[2] === 'edit' ? viewCampaignForm(main, id)
        : id ? viewCampaign(main, id) : viewCampaigns(main)),
    lists: () => viewLists(main),
    agents: () => viewAgents(main),
    dnc: () => viewDnc(main),
    me: () => viewAgentConsole(main, S.me.agent),
    agent: () => viewAgentConsole(main, decodeURIComponent(parts[1] || '')),
  };
  const supervisorOnly = ['monitor', 'campaigns', 'lists', 'agents', 'dnc'];
  let name = parts[0];
  if (!views[name] || (supervisorOnly.includes(name) && !can('supervisor'))) {
    location.hash = home();
    return;
  }
  S.cleanup = (await attempt(views[name])) || null;
}

// ---------- monitor ----------

/** Repeats `f` every `ms` (first run now); returns the stop function. */
function every(ms, f) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    try { await f(); } catch (e) { if (!stopped) banner(e.message); }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

function tile(label, stat, extra) {
  return h('div', { class: 'tile' }, h('div', { class: 'label' }, label),
    h('div', { class: 'value', 'data-stat': stat }, '–'), extra ? h('div', { class: 'sub', 'data-sub': stat }, extra) : null);
}

function setStat(root, stat, text, cls) {
  const el = root.querySelector(`[data-stat="${stat}"]`);
  if (el) { el.textContent = text; el.className = 'value' + (cls ? ' ' + cls : ''); }
}

function setSub(root, stat, text) {
  const el = root.querySelector(`[data-sub="${stat}"]`);
  if (el) el.textContent = text;
}

/**
 * A uPlot time chart in `el`: `series` are [label, scale] pairs (scale 'n' on the left axis,
 * '%' on the right). Returns {push(values) (a sample now; the last hour kept), set(times,
 * columns) (the whole data), destroy()}.
 */
function chart(el, title, series) {
  const width = () => Math.max(300, el.clientWidth - 10);
  let data = [[], ...series.map(() => [])];
  const colours = ['#2563eb', '#16a34a', '#d97706', '#dc2626', '#7c3aed', '#0891b2'];
  const axes = [{}, { scale: 'n' }];
  if (series.some(([, sc]) => sc === '%')) axes.push({ scale: '%', side: 1, grid: { show: false }, values: (u, v) => v.map((x) => x + ' %') });
  const plot = new uPlot({
    title, width: width(), height: 230, legend: { live: false },
    scales: { x: { time: true }, '%': { range: [0, 100] } },
    axes,
    series: [{}, ...series.map(([label, scale], i) => ({ label, scale, stroke: colours[i % colours.length], width: 2, spanGaps: false }))],
  }, data, el);
  const onResize = () => plot.setSize({ width: width(), height: 230 });
  window.addEventListener('resize', onResize);
  return {
    push(values) {
      const now = Date.now() / 1000;
      data[0].push(now);
      values.forEach((v, i) => data[i + 1].push(v));
      while (data[0].length && data[0][0] < now - 3600) data.forEach((col) => col.shift());
      plot.setData(data);
    },
    set(times, columns) {
      data = [times, ...columns];
      plot.setData(data);
    },
    destroy() { window.removeEventListener('resize', onResize); plot.destroy(); },
  };
}

/**
 * Attempts per minute over the last hour (GET /v1/stats/series), every minute of the hour
 * present (0 without attempts): [times (s), attempts, answered, answer rate %].
 */
async function minuteSeries(campaignId) {
  const r = await api('GET', '/v1/stats/series?minutes=60' + (campaignId ? '&campaignId=' + campaignId : ''));
  const byMinute = new Map(r.points.map((p) => [Date.parse(p.minute) / 1000, p]));
  const first = Math.floor(Date.parse(r.from) / 60000) * 60 + 60;
  const cols = [[], [], [], []];
  for (let t = first; t <= Date.now() / 1000; t += 60) {
    const p = byMinute.get(t) || { attempts: 0, answered: 0, ended: 0 };
    cols[0].push(t);
    cols[1].push(p.attempts);
    cols[2].push(p.answered);
    cols[3].push(p.ended ? (100 * p.answered) / p.ended : null);
  }
  return cols;
}

async function viewMonitor(main, campaignId) {
  // `outdial run --api` has no stored campaigns (404): the monitor still shows its one run.
  const campaigns = await api('GET', '/v1/campaigns').catch(() => []);
  const select = h('select', {
    id: 'monitor-campaign',
    onchange: (e) => { location.hash = e.target.value ? '#/monitor/' + e.target.value : '#/monitor'; },
  }, h('option', { value: '' }, 'All campaigns'),
  campaigns.map((c) => h('option', { value: c.id, selected: c.id === campaignId }, `${c.name} (${c.state})`)));
  const campaign = campaigns.find((c) => c.id === campaignId) || null;
  const endpoint = (campaign && campaign.endpoint) || {};
  const cap = endpoint.abandonCap ?? 0.03;
  const stream = h('span', { id: 'stream-state', class: 'muted' });
  const root = h('div', { id: 'monitor', 'data-campaign': campaignId || '' },
    h('div', { class: 'bar' }, h('h1', {}, 'Real-time monitor'), select, stream,
      campaign ? h('a', { href: '#/campaigns/' + campaign.id }, 'campaign page') : null),
    h('h2', {}, 'Calls in progress'),
    h('div', { class: 'tiles' }, tile('Dialling', 'calls-dialling'), tile('Ringing', 'calls-ringing'),
      tile('Answered', 'calls-answered'), tile('Queued', 'calls-queued'), tile('Connected', 'calls-connected'),
      tile('Calls per second', 'cps', 'last 10 s')),
    h('h2', {}, 'Agents and queue'),
    h('div', { class: 'tiles' }, tile('Available', 'agents-available'), tile('Ringing', 'agents-reserved'),
      tile('On call', 'agents-on_call'), tile('Wrap-up', 'agents-wrap_up'), tile('Paused', 'agents-paused'),
      tile('Queue', 'queue-waiting', 'longest wait –')),
    h('h2', {}, 'Rates'),
    h('div', { class: 'tiles' }, tile('Dial ratio', 'dialRatio', 'calls per available agent'),
      tile('Answer rate', 'answerRate'), tile('AMD human', 'amdHuman'), tile('AMD machine', 'amdMachine'),
      tile('AMD not sure', 'amdNotSure'),
      tile('Abandon rate', 'abandonRate', '')),
    h('h2', {}, 'Totals'),
    h('div', { class: 'tiles' }, tile('Leads final', 'leadsFinal'), tile('Attempts', 'attempts'),
      tile('Answered (ended calls)', 'answered'), tile('Queued', 'queued'), tile('Connected', 'connected'),
      tile('Abandoned', 'abandoned')),
    h('div', { class: 'charts' }, h('div', { id: 'chart-calls', class: 'chart' }), h('div', { id: 'chart-agents', class: 'chart' }),
      h('div', { id: 'chart-minutes', class: 'chart' })),
    h('h2', {}, 'Agents'),
    h('table', { id: 'agents-table' }, h('thead', {}, h('tr', {}, ['Agent', 'State', 'Reason', 'Time in state', 'Handled', 'Occupancy'].map((t) => h('th', {}, t)))), h('tbody')));
  main.append(root);
  const callsChart = chart(root.querySelector('#chart-calls'), 'Calls in progress (since this page opened, last hour kept)',
    [['dialling + ringing', 'n'], ['answered', 'n'], ['queued', 'n'], ['connected', 'n'], ['abandon rate %', '%']]);
  const agentsChart = chart(root.querySelector('#chart-agents'), 'Agents (since this page opened, last hour kept)',
    [['available', 'n'], ['on call', 'n'], ['wrap-up', 'n'], ['paused', 'n'], ['queue', 'n']]);
  const minutesChart = chart(root.querySelector('#chart-minutes'), 'Attempts per minute (last hour)',
    [['attempts', 'n'], ['answered', 'n'], ['answer rate %', '%']]);
  let minutesAt = 0;
  let minutesSeen = 0;
  const attemptsSeen = []; // (ms, attempts) over the last 10 s, for calls per second

  const stop = every(2000, async () => {
    const [stats, agents, queues] = await Promise.all([
      api('GET', campaignId ? `/v1/campaigns/${campaignId}/stats` : '/v1/stats'),
      api('GET', '/v1/agents').catch(() => []),
      api('GET', '/v1/queues').catch(() => []),
      Live.reconcile(campaignId),
    ]);
    stream.textContent = Live.connected ? 'live' : 'reconnecting…';
    const calls = Live.byState(campaignId);
    for (const [k, v] of Object.entries(calls)) setStat(root, 'calls-' + k, String(v));
    const now = Date.now();
    attemptsSeen.push([now, stats.attempts]);
    while (attemptsSeen.length > 1 && now - attemptsSeen[0][0] > 10000) attemptsSeen.shift();
    const [t0, a0] = attemptsSeen[0];
    const cps = now > t0 ? ((stats.attempts - a0) * 1000) / (now - t0) : 0;
    setStat(root, 'cps', cps.toFixed(1));
    // Agents by state; the queue.
    const counts = { available: 0, reserved: 0, on_call: 0, wrap_up: 0, paused: 0 };
    for (const a of agents) if (a.state in counts) counts[a.state] += 1;
    for (const [k, v] of Object.entries(counts)) setStat(root, 'agents-' + k, String(v));
    const qs = Array.isArray(queues) ? queues : [queues];
    const waiting = qs.reduce((n, q) => n + (q.waiting || 0), 0);
    const longest = qs.reduce((m, q) => Math.max(m, q.longestWaitMs || 0), 0);
    setStat(root, 'queue-waiting', String(waiting));
    setSub(root, 'queue-waiting', 'longest wait ' + dur(longest));
    // Rates.
    setStat(root, 'dialRatio', stats.pacing ? stats.pacing.dialRatio.toFixed(2) : '–');
    setStat(root, 'answerRate', pct(stats.answerRate));
    const amd = stats.amdShares || {};
    setStat(root, 'amdHuman', pct(amd.human || 0));
    setStat(root, 'amdMachine', pct(amd.machine || 0));
    setStat(root, 'amdNotSure', pct(amd.not_sure || 0));
    const abandon = stats.pacing ? stats.pacing.abandonRate : stats.abandonRate;
    setStat(root, 'abandonRate', pct(abandon), abandon > cap ? 'over' : 'under');
    setSub(root, 'abandonRate', stats.pacing
      ? `cap ${pct(cap)} over ${endpoint.abandonWindowHours ?? 24} h`
      : `cap ${pct(cap)}; over the ${campaignId ? 'campaign' : 'campaigns'}`);
    for (const k of ['leadsFinal', 'attempts', 'answered', 'queued', 'connected', 'abandoned']) setStat(root, k, num(stats[k]));
    // Charts.
    callsChart.push([calls.dialling + calls.ringing, calls.answered, calls.queued, calls.connected, abandon * 100]);
    agentsChart.push([counts.available, counts.on_call, counts.wrap_up, counts.paused, waiting]);
    // From the store every 10 s, or 4 s after new attempts (one grouped query each time).
    if (now - minutesAt >= 10000 || (stats.attempts !== minutesSeen && now - minutesAt >= 4000)) {
      minutesAt = now;
      minutesSeen = stats.attempts;
      const [times, ...cols] = await minuteSeries(campaignId);
      minutesChart.set(times, cols);
      root.querySelector('#chart-minutes').dataset.attempts = String(cols[0].reduce((a, b) => a + b, 0));
    }
    // The agents' table.
    const body = root.querySelector('#agents-table tbody');
    body.replaceChildren(...agents.map((a) => h('tr', { 'data-agent': a.id },
      h('td', {}, a.id), h('td', {}, h('span', { class: 'state ' + a.state }, a.state)), h('td', {}, a.reason || ''),
      h('td', {}, dur(a.in_state_ms)), h('td', {}, num(a.stats && a.stats.handled)),
      h('td', {}, pct(a.stats && a.stats.occupancy)))));
    root.dataset.updated = String(Date.now());
  });
  return () => { stop(); callsChart.destroy(); agentsChart.destroy(); minutesChart.destroy(); };
}

// ---------- campaigns ----------

/** The lifecycle commands offered in each state (docs/api.md). */
const COMMANDS = {
  draft: ['start', 'remove'],
  scheduled: ['remove'],
  active: ['pause'],
  paused: ['unpause', 'reload', 'remove'],
  completed: ['remove'],
  archived: [],
};

function controls(c, after) {
  if (!can('supervisor')) return null;
  return h('span', { class: 'controls' }, (COMMANDS[c.state] || []).map((cmd) => h('button', {
    type: 'button',
    'data-command': cmd,
    'data-campaign': c.id,
    onclick: () => attempt(async () => {
      if (cmd === 'remove' && !confirm(`Remove campaign ${c.name}? It is archived.`)) return;
      const r = await api('PUT', `/v1/campaigns/${c.id}/control`, { command: cmd });
      banner(`${c.name}: ${r.state}`, 'ok');
      after();
    }),
  }, cmd)));
}

async function viewCampaigns(main) {
  const list = await api('GET', '/v1/campaigns');
  const rerender = () => route();
  main.append(h('div', { class: 'bar' }, h('h1', {}, 'Campaigns'),
    can('admin') ? h('a', { class: 'button', id: 'new-campaign', href: '#/campaigns/new' }, 'New campaign') : null),
  h('table', { id: 'campaigns' },
    h('thead', {}, h('tr', {}, ['Id', 'Name', 'State', 'Call lists', 'cps', 'Max concurrent', 'Created', ''].map((t) => h('th', {}, t)))),
    h('tbody', {}, list.map((c) => h('tr', { 'data-campaign': c.id },
      h('td', {}, c.id), h('td', {}, h('a', { href: '#/campaigns/' + c.id }, c.name)),
      h('td', {}, h('span', { class: 'state ' + c.state, 'data-state': c.state }, c.state)),
      h('td', {}, (c.callLists || []).join(', ')), h('td', {}, num(c.cps)), h('td', {}, num(c.maxConcurrent)),
      h('td', {}, (c.createdAt || '').replace('T', ' ').slice(0, 19)), h('td', {}, controls(c, rerender)))))),
  list.length ? null : h('p', { class: 'muted' }, 'No campaign yet.'));
}

async function viewCampaign(main, id) {
  const [c, stats] = await Promise.all([api('GET', '/v1/campaigns/' + id), api('GET', `/v1/campaigns/${id}/stats`)]);
  const settings = Object.fromEntries(Object.entries(c).filter(([k]) => !['id', 'name', 'state', 'createdAt', 'updatedAt'].includes(k)));
  const row = (k, v, stat) => h('tr', {}, h('th', {}, k), h('td', { 'data-stat': stat }, v));
  const table = (obj) => h('table', { class: 'compact' }, Object.entries(obj).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, num(v)))));
  const cdr = async () => {
    const r = await api('GET', `/v1/campaigns/${id}/cdr`, undefined, { raw: true });
    const url = URL.createObjectURL(await r.blob());
    const a = h('a', { href: url, download: `cdr-${c.name}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  };
  const recycleBox = can('supervisor') && (c.state === 'completed' || c.state === 'paused')
    ? h('form', {
      id: 'recycle',
      onsubmit: (ev) => {
        ev.preventDefault();
        const dispositions = [...ev.target.querySelectorAll('input:checked')].map((i) => i.value);
        attempt(async () => {
          await api('PUT', `/v1/campaigns/${id}/control`, { command: 'recycle', dispositions });
          route();
        });
      },
    }, h('h2', {}, 'Recycle leads'), Object.keys(stats.dispositions).map((d) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: d }), d)),
    ' ', h('button', { type: 'submit' }, 'Recycle'))
    : null;
  main.append(h('div', { id: 'campaign', 'data-campaign': id },
    h('div', { class: 'bar' }, h('h1', {}, c.name), h('span', { class: 'state ' + c.state, id: 'campaign-state' }, c.state),
      controls(c, () => route()),
      h('a', { href: '#/monitor/' + id }, 'monitor'),
      can('admin') && (c.state === 'draft' || c.state === 'paused') ? h('a', { href: `#/campaigns/${id}/edit`, id: 'edit-campaign' }, 'edit settings') : null,
      can('admin') && c.state === 'draft' ? h('button', {
        type: 'button',
        onclick: () => attempt(async () => {
          if (!confirm(`Delete campaign ${c.name}?`)) return;
          await api('DELETE', '/v1/campaigns/' + id);
          location.hash = '#/campaigns';
        }),
      }, 'delete') : null,
      h('button', { type: 'button', id: 'cdr', onclick: () => attempt(cdr) }, 'Download CDRs (CSV)')),
    h('div', { class: 'columns' },
      h('section', {}, h('h2', {}, 'Statistics'),
        h('table', { id: 'campaign-stats', class: 'compact' },
          row('Leads (final)', `${stats.leads} (${stats.leadsFinal})`, 'leads'),
          row('Attempts', num(stats.attempts), 'attempts'),
          row('Answered', num(stats.answered), 'answered'),
          row('Answer rate', pct(stats.answerRate), 'answerRate'),
          row('AMD human / machine / not sure', ['human', 'machine', 'not_sure'].map((k) => pct((stats.amdShares || {})[k] || 0)).join(' / '), 'amd'),
          row('Queued', num(stats.queued), 'queued'), row('Connected', num(stats.connected), 'connected'),
          row('Abandoned', num(stats.abandoned), 'abandoned'), row('Abandon rate', pct(stats.abandonRate), 'abandonRate'),
          row('Mean wait', dur(stats.avgWaitMs), 'avgWait'), row('Mean talk', dur(stats.avgTalkMs), 'avgTalk'),
          row('Post-dial delay p50 / p90 / p99', `${stats.pddP50Ms} / ${stats.pddP90Ms} / ${stats.pddP99Ms} ms`, 'pdd')),
        h('h2', {}, 'Dispositions'), table(stats.dispositions),
        Object.keys(stats.agentDispositions).length ? [h('h2', {}, "Agents' dispositions"), table(stats.agentDispositions)] : null,
        recycleBox),
      h('section', {}, h('h2', {}, 'Settings'), h('pre', { id: 'campaign-settings' }, JSON.stringify(settings, null, 2))))));
}

/** The campaign settings shown first in the form; the rest follow by name. */
const FIRST = ['name', 'callLists', 'callerId', 'trunk', 'cps', 'maxConcurrent', 'ringTimeout', 'defaultRegion', 'activePeriod', 'amd', 'onMachine', 'onHuman', 'acd', 'endpoint', 'rescheduleRules'];

/** One form input for a CampaignBody property (schema `p`); returns [element, read()]. */
function settingInput(key, p, value, lists) {
  const attrs = { name: key, id: 'f-' + key, 'data-field': key };
  if (key === 'callLists') {
    const sel = h('select', { ...attrs, multiple: true, size: Math.min(6, Math.max(2, lists.length)) },
      lists.map((l) => h('option', { value: l.id, selected: (value || []).includes(l.id) }, `${l.id}: ${l.name} (${l.numbersCount})`)));
    return [sel, () => { const v = [...sel.selectedOptions].map((o) => Number(o.value)); return v.length ? v : undefined; }];
  }
  if (p.enum) {
    const sel = h('select', attrs, h('option', { value: '' }, '(default)'), p.enum.map((e) => h('option', { value: e, selected: e === value }, e)));
    return [sel, () => sel.value || undefined];
  }
  if (p.type === 'boolean') {
    const sel = h('select', attrs, ['', 'true', 'false'].map((e) => h('option', { value: e, selected: value !== undefined && String(value) === e }, e || '(default)')));
    return [sel, () => (sel.value ? sel.value === 'true' : undefined)];
  }
  if (p.type === 'integer' || p.type === 'number') {
    // Text, not type=number: what the user typed goes to the API, which says what is wrong.
    const inp = h('input', { ...attrs, type: 'text', inputmode: 'decimal', value: value ?? '' });
    return [inp, () => { const t = inp.value.trim(); if (!t) return undefined; const n = Number(t); return Number.isFinite(n) ? n : t; }];
  }
  if (p.type === 'string') {
    const inp = h('input', { ...attrs, type: p.writeOnly ? 'password' : 'text', value: value ?? '' });
    return [inp, () => inp.value.trim() || undefined];
  }
  // Objects and arrays: JSON.
  const ta = h('textarea', { ...attrs, rows: 3, placeholder: p.type === 'array' ? '[ … ]' : '{ … }' });
  ta.value = value === undefined ? '' : JSON.stringify(value, null, 2);
  return [ta, () => {
    const t = ta.value.trim();
    if (!t) return undefined;
    try { return JSON.parse(t); } catch (e) { throw new ApiError(0, `${key}: not JSON (${e.message})`, key); }
  }];
}

async function viewCampaignForm(main, id) {
  if (!can('admin')) { main.append(h('p', {}, 'Creating and editing campaigns needs the admin role.')); return; }
  const [doc, lists, current] = await Promise.all([
    api('GET', '/v1/openapi.json'), api('GET', '/v1/call-lists'), id ? api('GET', '/v1/campaigns/' + id) : null]);
  const schema = doc.components.schemas.CampaignBody;
  const props = schema.properties;
  const required = new Set(schema.required || []);
  const keys = [...FIRST.filter((k) => k in props), ...Object.keys(props).filter((k) => !FIRST.includes(k)).sort()];
  const readers = [];
  const error = h('p', { id: 'form-error', class: 'error', role: 'alert' });
  const rows = keys.map((k) => {
    const p = props[k].$ref ? { type: 'object', description: 'see the API docs' } : props[k];
    const [input, read] = settingInput(k, p, current ? current[k] : undefined, lists);
    if (id && k === 'name') input.setAttribute('readonly', '');
    readers.push([k, read]);
    return h('div', { class: 'field' }, h('label', { for: 'f-' + k }, k, required.has(k) ? ' *' : ''), input,
      h('small', {}, [p.description, p.minimum !== undefined ? `min ${p.minimum}` : null, p.maximum !== undefined ? `max ${p.maximum}` : null].filter(Boolean).join('; ')));
  });
  const form = h('form', {
    id: 'campaign-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      form.querySelectorAll('.invalid').forEach((e) => e.classList.remove('invalid'));
      try {
        const body = {};
        for (const [k, read] of readers) { const v = read(); if (v !== undefined) body[k] = v; }
        const c = id ? await api('PUT', '/v1/campaigns/' + id, body) : await api('POST', '/v1/campaigns', body);
        location.hash = '#/campaigns/' + c.id;
      } catch (e) {
        error.textContent = e.message + (e.field ? ` (${e.field})` : '');
        const bad = e.field && form.querySelector(`[data-field="${e.field.split(/[.[]/)[0]}"]`);
        if (bad) { bad.classList.add('invalid'); bad.focus(); }
      }
    },
  }, h('h1', {}, id ? `Edit campaign ${current.name}` : 'New campaign'),
  h('p', { class: 'muted' }, 'Empty fields take the service defaults. Objects and lists are JSON; every setting is described in the API docs.'),
  rows, error, h('button', { type: 'submit', id: 'save-campaign' }, id ? 'Save' : 'Create draft'));
  main.append(form);
}

// ---------- call lists ----------

async function viewLists(main) {
  const lists = await api('GET', '/v1/call-lists');
  const result = h('div', { id: 'upload-result' });
  const upload = can('admin') ? h('form', {
    id: 'upload',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const file = f.file.files[0];
      const csv = file ? await file.text() : f.csv.value;
      const q = new URLSearchParams({ name: f.name.value.trim() });
      if (f.region.value.trim()) q.set('defaultRegion', f.region.value.trim());
      result.replaceChildren();
      try {
        const r = await api('POST', '/v1/call-lists?' + q, csv, { type: 'text/csv' });
        result.append(h('p', { class: 'ok', 'data-stored': r.numbersCount }, `Call list ${r.id} “${r.name}”: ${r.numbersCount} numbers stored.`));
        if (r.errors.length) {
          result.append(h('p', {}, `${r.errors.length} rows refused:`),
            h('table', { id: 'row-errors', class: 'compact' }, h('tr', {}, h('th', {}, 'Row'), h('th', {}, 'Reason')),
              r.errors.map((e) => h('tr', {}, h('td', {}, e.line ?? e.index), h('td', {}, e.reason)))));
        }
        const tbody = document.querySelector('#lists tbody');
        tbody.append(listRow({ ...r }));
      } catch (e) {
        result.append(h('p', { class: 'error' }, e.message));
      }
    },
  }, h('h2', {}, 'Upload a call list (CSV)'),
  h('p', { class: 'muted' }, 'A ', h('code', {}, 'number'), ' column; the other columns become the lead’s attributes.'),
  h('div', { class: 'field' }, h('label', { for: 'list-name' }, 'Name *'), h('input', { id: 'list-name', name: 'name', required: true })),
  h('div', { class: 'field' }, h('label', { for: 'list-region' }, 'Default region'), h('input', { id: 'list-region', name: 'region', placeholder: 'US', size: 4 })),
  h('div', { class: 'field' }, h('label', { for: 'list-file' }, 'CSV file'), h('input', { id: 'list-file', name: 'file', type: 'file', accept: '.csv,text/csv' })),
  h('div', { class: 'field' }, h('label', { for: 'list-csv' }, 'or paste it'), h('textarea', { id: 'list-csv', name: 'csv', rows: 4, placeholder: 'number,name\n+14155550100,Ann' })),
  h('button', { type: 'submit', id: 'upload-list' }, 'Upload'), result) : null;
  function listRow(l) {
    return h('tr', { 'data-list': l.id }, h('td', {}, l.id), h('td', {}, l.name), h('td', {}, num(l.numbersCount)),
      h('td', {}, (l.createdAt || '').replace('T', ' ').slice(0, 19)),
      h('td', {}, can('admin') ? h('button', {
        type: 'button',
        onclick: () => attempt(async () => {
          if (!confirm(`Delete call list ${l.name}?`)) return;
          await api('DELETE', '/v1/call-lists/' + l.id);
          route();
        }),
      }, 'delete') : null));
  }
  main.append(h('h1', {}, 'Call lists'),
    h('table', { id: 'lists' }, h('thead', {}, h('tr', {}, ['Id', 'Name', 'Numbers', 'Created', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, lists.map(listRow))), upload);
}

// ---------- agents ----------

async function agentAction(id, path, body) {
  await api('PUT', `/v1/agents/${encodeURIComponent(id)}/${path}`, body);
}

async function viewAgents(main) {
  const body = h('tbody');
  const add = can('admin') ? h('form', {
    id: 'add-agent',
    onsubmit: (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const b = { id: f.agent.value.trim(), password: f.password.value };
      if (f.realm.value.trim()) b.realm = f.realm.value.trim();
      attempt(async () => {
        await api('POST', '/v1/agents', b);
        banner(`Agent ${b.id} added: its phone registers with this password.`, 'ok');
        f.reset();
      });
    },
  }, h('h2', {}, 'Add an agent'),
  h('label', {}, 'Id ', h('input', { name: 'agent', required: true, size: 8 })), ' ',
  h('label', {}, 'SIP password ', h('input', { name: 'password', type: 'password', required: true })), ' ',
  h('label', {}, 'Realm ', h('input', { name: 'realm', placeholder: 'outdial', size: 10 })), ' ',
  h('button', { type: 'submit' }, 'Add')) : null;
  main.append(h('h1', {}, 'Agents'),
    h('table', { id: 'agents' }, h('thead', {}, h('tr', {}, ['Agent', 'State', 'Reason', 'Time in state', 'Last call', 'Handled', 'Occupancy', ''].map((t) => h('th', {}, t)))), body),
    add);
  const stop = every(2000, async () => {
    const agents = await api('GET', '/v1/agents');
    if (document.activeElement && body.contains(document.activeElement)) return; // typing a disposition
    body.replaceChildren(...agents.map((a) => {
      const disp = h('input', { placeholder: 'disposition', size: 10 });
      return h('tr', { 'data-agent': a.id },
        h('td', {}, h('a', { href: '#/agent/' + encodeURIComponent(a.id) }, a.id)),
        h('td', {}, h('span', { class: 'state ' + a.state }, a.state)), h('td', {}, a.reason || ''),
        h('td', {}, dur(a.in_state_ms)), h('td', {}, a.last_call ? a.last_call.slice(0, 12) + '…' : ''),
        h('td', {}, num(a.stats && a.stats.handled)), h('td', {}, pct(a.stats && a.stats.occupancy)),
        h('td', {}, a.state === 'offline' ? null : [
          a.state === 'paused'
            ? h('button', { type: 'button', onclick: () => attempt(() => agentAction(a.id, 'state', { state: 'available' })) }, 'available')
            : h('button', { type: 'button', onclick: () => attempt(() => agentAction(a.id, 'state', { state: 'paused', reason: 'supervisor' })) }, 'pause'),
          a.last_call ? [' ', disp, h('button', {
            type: 'button',
            onclick: () => attempt(async () => { await agentAction(a.id, 'disposition', { disposition: disp.value.trim() }); banner(`${a.id}: disposition set`, 'ok'); }),
          }, 'set')] : null]));
    }));
  });
  return stop;
}

// ---------- do-not-call ----------

async function viewDnc(main) {
  let after = null;
  const body = h('tbody');
  const more = h('button', { type: 'button', id: 'dnc-more', hidden: true, onclick: () => attempt(load) }, 'more');
  async function load() {
    const q = new URLSearchParams({ limit: '200' });
    if (after) q.set('after', after);
    const page = await api('GET', '/v1/dnc?' + q);
    for (const n of page.numbers) {
      body.append(h('tr', { 'data-number': n.number }, h('td', {}, n.number), h('td', {}, n.source || ''),
        h('td', {}, (n.addedAt || '').replace('T', ' ').slice(0, 19)),
        h('td', {}, can('admin') ? h('button', {
          type: 'button',
          'data-remove': n.number,
          onclick: (ev) => attempt(async () => {
            await api('DELETE', '/v1/dnc/' + encodeURIComponent(n.number));
            ev.target.closest('tr').remove();
            banner(`${n.number} removed from the do-not-call list`, 'ok');
          }),
        }, 'remove') : null)));
    }
    after = page.next;
    more.hidden = !after;
  }
  const add = can('admin') ? h('form', {
    id: 'dnc-add',
    onsubmit: (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const numbers = f.numbers.value.split(/[\s,;]+/).filter(Boolean);
      const b = { numbers };
      if (f.region.value.trim()) b.defaultRegion = f.region.value.trim();
      attempt(async () => {
        const r = await api('POST', '/v1/dnc', b);
        const errs = r.errors.map((e) => `${numbers[e.index]}: ${e.reason}`).join('; ');
        banner(`${r.added} added` + (errs ? ` — refused: ${errs}` : ''), errs ? 'error' : 'ok');
        body.replaceChildren();
        after = null;
        await load();
      });
    },
  }, h('h2', {}, 'Add numbers'),
  h('label', {}, 'Numbers ', h('input', { name: 'numbers', required: true, size: 40, placeholder: '+14155550100, +14155550101' })), ' ',
  h('label', {}, 'Region ', h('input', { name: 'region', size: 4, placeholder: 'US' })), ' ',
  h('button', { type: 'submit' }, 'Add')) : null;
  main.append(h('h1', {}, 'Do-not-call list'), add,
    h('table', { id: 'dnc' }, h('thead', {}, h('tr', {}, ['Number', 'Source', 'Added', ''].map((t) => h('th', {}, t)))), body), more);
  await load();
}

// ---------- an agent's soft console ----------

const PAUSE_REASONS = ['break', 'lunch', 'training', 'meeting'];
const CALL_CONTROLS = [['mute', 'Mute'], ['unmute', 'Unmute'], ['hold', 'Hold'], ['resume', 'Resume'], ['hangup', 'Hang up']];

async function viewAgentConsole(main, id) {
  if (!id) { main.append(h('p', {}, 'This token acts for no agent.')); return; }
  const enc = encodeURIComponent(id);
  const state = h('span', { id: 'my-state', class: 'state' }, '…');
  const since = h('span', { id: 'my-since', class: 'muted' });
  const callBox = h('section', { id: 'my-call' });
  const note = h('p', { id: 'my-note', class: 'muted' });
  let agent = null;
  let call = null;
  let shownCall = null;

  const renderCall = () => {
    callBox.replaceChildren();
    if (!call) { callBox.append(h('p', { class: 'muted' }, 'No call yet.')); return; }
    const attrs = Object.entries(call.attributes || {});
    const choices = call.dispositions.length ? call.dispositions : null;
    const free = h('input', { id: 'free-disposition', placeholder: 'disposition', size: 14 });
    const setDisposition = (d) => attempt(async () => {
      await api('PUT', `/v1/agents/${enc}/disposition`, { disposition: d });
      banner(`Disposition “${d}” saved for ${call.number}`, 'ok');
      await refresh(true);
    });
    callBox.append(h('div', {},
      h('h2', {}, call.live ? 'On the line' : 'Last call'),
      h('table', { class: 'compact', id: 'lead' },
        h('tr', {}, h('th', {}, 'Number'), h('td', { 'data-lead': 'number' }, call.number)),
        h('tr', {}, h('th', {}, 'Campaign'), h('td', {}, call.campaign || '')),
        attrs.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', { 'data-attribute': k }, typeof v === 'string' ? v : JSON.stringify(v))))),
      call.live && agent && agent.state === 'on_call'
        ? h('div', { class: 'controls', id: 'call-controls' }, CALL_CONTROLS.map(([a, label]) => h('button', {
          type: 'button',
          'data-action': a,
          onclick: () => attempt(async () => { await api('POST', `/v1/agents/${enc}/call/${a}`, {}); banner(label + ': done', 'ok'); }),
        }, label)))
        : null,
      h('h2', {}, 'Disposition', call.awaitingDisposition ? h('span', { class: 'badge' }, ' required') : null),
      h('p', { id: 'current-disposition' }, call.agentDisposition ? `Saved: ${call.agentDisposition}` : 'None yet.'),
      h('div', { class: 'controls', id: 'dispositions' },
        choices ? choices.map((d) => h('button', { type: 'button', 'data-disposition': d, onclick: () => setDisposition(d) }, d))
          : [free, h('button', { type: 'button', onclick: () => setDisposition(free.value.trim()) }, 'Save')])));
  };

  async function refresh(force) {
    try {
      agent = await api('GET', `/v1/agents/${enc}`);
    } catch (e) {
      agent = null;
      note.textContent = e.message;
    }
    state.textContent = agent ? agent.state : 'offline';
    state.className = 'state ' + (agent ? agent.state : 'offline');
    since.textContent = agent ? `for ${dur(agent.in_state_ms)}` + (agent.reason ? ` (${agent.reason})` : '') : '';
    if (agent) note.textContent = agent.pause_pending ? `Pause (${agent.pause_pending}) after this call` : '';
    const key = agent ? `${agent.last_call}|${agent.state}|${agent.awaiting_disposition}` : '';
    if (agent && agent.last_call && (force || key !== shownCall)) {
      call = await api('GET', `/v1/agents/${enc}/call`).catch(() => null);
      shownCall = key;
      renderCall();
    } else if (!agent || !agent.last_call) {
      call = null;
      if (shownCall !== '') { shownCall = ''; renderCall(); }
    }
  }

  const pauseReason = h('select', { id: 'pause-reason' }, PAUSE_REASONS.map((r) => h('option', { value: r }, r)));
  main.append(h('div', { id: 'agent-console', 'data-agent': id },
    h('div', { class: 'bar' }, h('h1', {}, `Agent ${id}`), state, since),
    h('div', { class: 'controls' },
      h('button', { type: 'button', id: 'go-available', onclick: () => attempt(async () => { await agentAction(id, 'state', { state: 'available' }); await refresh(); }) }, 'Available'),
      pauseReason,
      h('button', { type: 'button', id: 'go-paused', onclick: () => attempt(async () => { await agentAction(id, 'state', { state: 'paused', reason: pauseReason.value }); await refresh(); }) }, 'Pause')),
    note, callBox));
  // Refresh at once on events naming this agent, and every 2 s for the time in state.
  const onEvent = (env) => { const p = env.payload || {}; if (p.agent === id || (agent && p.callId === agent.last_call)) refresh(); };
  Live.listeners.add(onEvent);
  const stop = every(2000, () => refresh());
  return () => { stop(); Live.listeners.delete(onEvent); };
}

// ---------- start ----------

document.getElementById('signout').addEventListener('click', () => signOut());
window.addEventListener('hashchange', route);
route();
