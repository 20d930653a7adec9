// hive-resilience live dashboard: reads `event: status` from /dashboard/events (with
// fetch, so that a bearer token can go in a header), draws the page, calls /admin.
// Plain JS, no build step, no external resource: the gateway may run offline.
'use strict';

// The page's own failures, for a browser test to read (`window.__hiveErrors`): script
// errors, rejected promises nobody handled, and anything the content security policy blocked.
window.__hiveErrors = window.__hiveErrors || [];
window.addEventListener('error', (e) => {
  window.__hiveErrors.push(`${e.message || 'error'} at ${e.filename || '?'}:${e.lineno || 0}`);
});
window.addEventListener('unhandledrejection', (e) => {
  const r = e.reason;
  window.__hiveErrors.push(`unhandled rejection: ${r && r.stack ? r.stack : r}`);
});
document.addEventListener('securitypolicyviolation', (e) => {
  window.__hiveErrors.push(`blocked by the content security policy: ${e.violatedDirective} ${e.blockedURI || ''}`);
});

(() => {
  const TOKEN_KEY = 'hive.dashboard.token';
  const HOUR_MS = 3600 * 1000;
  const MINUTE_MS = 60 * 1000;
  const STALE_MS = 5000; // no status for that long: the stream is shown as stale
  const DEAD_MS = 12000; // … and dropped and opened again after that long
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 10000;

  const WINDOWS = {
    last_minute: { label: 'last minute', seconds: 60 },
    last_5_minutes: { label: 'last 5 minutes', seconds: 300 },
    last_hour: { label: 'last hour', seconds: 3600 },
  };

  const BREAKER = {
    closed: { label: 'Closed', icon: '●', hint: 'calls pass' },
    open: { label: 'Open', icon: '✕', hint: 'calls refused until the cool-down ends' },
    half_open: { label: 'Half-open', icon: '◐', hint: 'trial calls decide' },
    forced_open: { label: 'Forced open', icon: '⊘', hint: 'opened by an operator' },
    disabled: { label: 'Disabled', icon: '○', hint: 'no breaker: calls always pass' },
    metrics_only: { label: 'Metrics only', icon: '◌', hint: 'counts, never refuses' },
  };

  const HEALTH = {
    unknown: { label: 'Unknown', icon: '?' },
    healthy: { label: 'Healthy', icon: '✓' },
    degraded: { label: 'Degraded', icon: '!' },
    unhealthy: { label: 'Unhealthy', icon: '✕' },
  };

  const ACTIONS = [
    { group: 'Breaker', items: [['force-open', 'Force open'], ['force-close', 'Force close'], ['half-open', 'Half-open']] },
    { group: 'Health', items: [['mark-healthy', 'Mark healthy'], ['mark-unhealthy', 'Mark unhealthy'], ['clear-health', 'Clear']] },
    { group: 'Traffic', items: [['drain', 'Drain'], ['undrain', 'Undrain']] },
  ];
  const ACTION_LABEL = Object.fromEntries(ACTIONS.flatMap((g) => g.items));

  const state = {
    status: null,
    window: 'last_minute',
    lastEventAt: 0,
    conn: 'connecting',
    // model -> Map(minute_unix_ms -> {requests, successes, failures, p50_ms, p95_ms, p99_ms, failovers, server})
    history: new Map(),
    failoversSeen: new Map(), // failover key -> its minute (live failover counting, deduplicated)
    failoversPerMinute: new Map(), // minute_unix_ms -> Map(model moved from -> count)
    historyServer: null, // null: not asked yet, true: /dashboard/history answers, false: it does not
    liveSince: null,
    cards: new Map(),
    sigs: {},
    tokenAsked: false,
  };

  let chartObserver = null; // set at start when the browser has ResizeObserver

  // ---------------------------------------------------------------- small helpers

  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  function setText(el, text) {
    const t = String(text);
    if (el.textContent !== t) el.textContent = t;
  }

  function setData(el, name, value) {
    const v = String(value);
    if (el.getAttribute('data-' + name) !== v) el.setAttribute('data-' + name, v);
  }

  /** Runs `draw` only when `sig` differs from the last one drawn under `name`. */
  function changed(name, sig) {
    const text = typeof sig === 'string' ? sig : JSON.stringify(sig);
    if (state.sigs[name] === text) return false;
    state.sigs[name] = text;
    return true;
  }

  const sumFailures = (counts) =>
    Object.values((counts && counts.failures) || {}).reduce((a, b) => a + b, 0);

  const pad = (n, w = 2) => String(n).padStart(w, '0');

  function fmtTime(ms, withMs = false) {
    if (ms === null || ms === undefined) return '—';
    const d = new Date(ms);
    const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withMs ? `${t}.${pad(d.getMilliseconds(), 3)}` : t;
  }

  function fmtDateTime(ms) {
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtTime(ms)}`;
  }

  function fmtPct(x, digits = 1) {
    if (x === null || x === undefined || Number.isNaN(x)) return '—';
    if (x >= 1) return '100 %';
    const p = x * 100;
    return `${p >= 99.95 ? p.toFixed(2) : p.toFixed(digits)} %`;
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1) return `${ms.toFixed(2)} ms`;
    if (ms < 100) return `${ms.toFixed(1)} ms`;
    if (ms < 1000) return `${Math.round(ms)} ms`;
    return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  }

  function fmtDur(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
    if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
    const m = Math.floor(seconds / 60);
    if (m < 60) return `${m} min ${pad(Math.floor(seconds % 60))} s`;
    const hrs = Math.floor(m / 60);
    if (hrs < 48) return `${hrs} h ${pad(m % 60)} min`;
    return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
  }

  function fmtRate(x) {
    if (x === null || x === undefined) return '—';
    if (x === 0) return '0';
    if (x < 0.1) return x.toFixed(3);
    if (x < 10) return x.toFixed(2);
    if (x < 100) return x.toFixed(1);
    return String(Math.round(x));
  }

  function shortHash(hash) {
    if (!hash) return '—';
    const i = hash.indexOf(':');
    return (i >= 0 ? hash.slice(i + 1) : hash).slice(0, 12);
  }

  function availabilityClass(x) {
    if (x === null || x === undefined) return 'none';
    if (x >= 0.99) return 'good';
    if (x >= 0.95) return 'warn';
    return 'bad';
  }

  // ---------------------------------------------------------------- token

  function getToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (_) {
      return '';
    }
  }

  function authHeaders(extra) {
    const headers = Object.assign({}, extra || {});
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  }

  function showTokenState(message) {
    const has = !!getToken();
    $('token').placeholder = has ? 'saved · type to replace' : 'bearer token';
    $('token-clear').hidden = !has;
    if (message !== undefined) setText($('token-note'), message);
  }

  /** A read or an action was refused: ask for a token. */
  function askToken(message) {
    const form = $('token-form');
    form.classList.add('attention');
    setText($('token-note'), message);
    if (!state.tokenAsked) {
      state.tokenAsked = true;
      const active = document.activeElement;
      if (!active || active === document.body) $('token').focus();
    }
  }

  function saveToken(ev) {
    ev.preventDefault();
    const value = $('token').value.trim();
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      /* storage refused: the token lives only until the reload */
    }
    $('token').value = '';
    $('token-form').classList.remove('attention');
    state.tokenAsked = false;
    showTokenState(value ? 'saved for this tab' : 'token forgotten');
    reconnectNow();
    probeExtras();
  }

  function forgetToken() {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      /* nothing kept */
    }
    $('token').value = '';
    showTokenState('token forgotten');
    reconnectNow();
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) {
      /* not JSON */
    }
    return `HTTP ${response.status} ${response.statusText || ''}`.trim();
  }

  // ---------------------------------------------------------------- the stream

  let controller = null;
  let retryTimer = null;
  let backoff = BACKOFF_MIN_MS;

  function setConn(conn, detail) {
    state.conn = conn;
    const el = $('connection');
    setText(el, conn);
    setData(el, 'state', conn);
    setText($('connection-detail'), detail || '');
    document.body.setAttribute('data-connection', conn);
  }

  function reconnectNow() {
    backoff = BACKOFF_MIN_MS;
    connect();
  }

  function scheduleRetry(reason) {
    clearTimeout(retryTimer);
    const wait = backoff;
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    setConn('reconnecting', `in ${Math.round(wait / 1000)} s · ${reason}`);
    retryTimer = setTimeout(connect, wait);
  }

  async function connect() {
    clearTimeout(retryTimer);
    if (controller) controller.abort();
    const ctrl = new AbortController();
    controller = ctrl;
    if (state.conn !== 'reconnecting') setConn('connecting');
    let response;
    try {
      response = await fetch('/dashboard/events', {
        headers: authHeaders({ Accept: 'text/event-stream' }),
        cache: 'no-store',
        signal: ctrl.signal,
      });
    } catch (err) {
      if (controller !== ctrl) return; // replaced by a newer connection
      scheduleRetry(navigator.onLine === false ? 'offline' : 'gateway unreachable');
      return;
    }
    if (controller !== ctrl) return;
    if (response.status === 401 || response.status === 403) {
      const message = await errorMessage(response);
      // No retry with the same token: it would only be refused again. Saving one reconnects.
      setConn('token needed', message);
      askToken(response.status === 401 ? 'type a token and save' : 'this token may not read: type another');
      return;
    }
    if (!response.ok || !response.body) {
      scheduleRetry(`HTTP ${response.status}`);
      return;
    }
    const parser = sseParser((type, data) => {
      if (controller !== ctrl) return;
      if (type === 'status') onStatusText(data);
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser(decoder.decode(value, { stream: true }));
      }
      parser(decoder.decode());
    } catch (err) {
      if (controller !== ctrl) return;
      scheduleRetry('stream broke');
      return;
    }
    if (controller !== ctrl) return;
    scheduleRetry('stream ended');
  }

  /** A Server-Sent Events parser: feed it text, it calls `dispatch(type, data)` per event. */
  function sseParser(dispatch) {
    let pending = '';
    let type = '';
    let data = [];
    const line = (text) => {
      if (text === '') {
        if (data.length) dispatch(type || 'message', data.join('\n'));
        type = '';
        data = [];
        return;
      }
      if (text[0] === ':') return; // a comment (keep-alive)
      const colon = text.indexOf(':');
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? '' : text.slice(colon + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    };
    return (chunk) => {
      pending += chunk;
      let start = 0;
      for (;;) {
        const lf = pending.indexOf('\n', start);
        const cr = pending.indexOf('\r', start);
        let end;
        let next;
        if (cr >= 0 && (lf < 0 || cr < lf)) {
          if (cr === pending.length - 1) break; // maybe a \r\n cut in two
          end = cr;
          next = pending[cr + 1] === '\n' ? cr + 2 : cr + 1;
        } else if (lf >= 0) {
          end = lf;
          next = lf + 1;
        } else {
          break;
        }
        line(pending.slice(start, end));
        start = next;
      }
      pending = pending.slice(start);
    };
  }

  function onStatusText(text) {
    let status;
    try {
      status = JSON.parse(text);
    } catch (err) {
      console.warn('hive dashboard: a status that is not JSON', err);
      return;
    }
    state.lastEventAt = Date.now();
    backoff = BACKOFF_MIN_MS;
    if (state.conn !== 'live') {
      setConn('live');
      $('token-form').classList.remove('attention');
      if (state.historyServer === null) loadHistory();
    }
    state.status = status;
    if (state.liveSince === null) state.liveSince = status.metrics ? status.metrics.taken_unix_ms : Date.now();
    recordLive(status);
    render();
  }

  // Shows a stream that stopped talking, then drops it and opens a new one.
  setInterval(() => {
    if (state.conn !== 'live' && state.conn !== 'stale') return;
    const quiet = Date.now() - state.lastEventAt;
    if (quiet > DEAD_MS) {
      if (controller) controller.abort();
      controller = null;
      scheduleRetry(`no update for ${Math.round(quiet / 1000)} s`);
    } else if (quiet > STALE_MS) {
      setConn('stale', `no update for ${Math.round(quiet / 1000)} s`);
    }
  }, 1000);

  // ---------------------------------------------------------------- history

  function historyOf(model) {
    let m = state.history.get(model);
    if (!m) {
      m = new Map();
      state.history.set(model, m);
    }
    return m;
  }

  function recordLive(status) {
    const metrics = status.metrics;
    if (!metrics) return;
    const now = metrics.taken_unix_ms || Date.now();
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    for (const f of metrics.failovers || []) {
      const key = `${f.at_unix_ms}|${f.from}|${f.to}|${f.reason}`;
      if (!state.failoversSeen.has(key)) {
        const minute = Math.floor(f.at_unix_ms / MINUTE_MS) * MINUTE_MS;
        state.failoversSeen.set(key, minute);
        let counts = state.failoversPerMinute.get(minute);
        if (!counts) {
          counts = new Map();
          state.failoversPerMinute.set(minute, counts);
        }
        counts.set(f.from, (counts.get(f.from) || 0) + 1);
      }
    }
    for (const mm of metrics.models || []) {
      const w = mm.windows && mm.windows.last_minute;
      if (!w) continue;
      const c = w.counts || {};
      const failures = sumFailures(c);
      const series = historyOf(mm.model);
      const old = series.get(minute);
      if (old && old.server && minute < Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS) continue;
      const lat = w.latency || null;
      series.set(minute, {
        requests: (c.successes || 0) + failures + (c.client_errors || 0),
        successes: c.successes || 0,
        failures,
        rejected: c.rejected || 0,
        p50_ms: lat ? lat.p50 : null,
        p95_ms: lat ? lat.p95 : null,
        p99_ms: lat ? lat.p99 : null,
        failovers: null,
        server: false,
      });
    }
    prune(minute - HOUR_MS);
  }

  function prune(oldest) {
    for (const series of state.history.values()) {
      for (const minute of series.keys()) if (minute < oldest) series.delete(minute);
    }
    for (const [key, minute] of state.failoversSeen) if (minute < oldest) state.failoversSeen.delete(key);
    for (const minute of state.failoversPerMinute.keys()) if (minute < oldest) state.failoversPerMinute.delete(minute);
  }

  async function loadHistory() {
    let response;
    try {
      response = await fetch('/dashboard/history?minutes=60', { headers: authHeaders(), cache: 'no-store' });
    } catch (_) {
      return; // the stream's reconnection shows the trouble
    }
    if (!response.ok) {
      state.historyServer = response.status === 401 || response.status === 403 ? null : false;
      renderHistorySource();
      return;
    }
    let body;
    try {
      body = await response.json();
    } catch (_) {
      state.historyServer = false;
      return;
    }
    state.historyServer = true;
    for (const row of body.minutes || []) {
      if (!row || !row.model) continue;
      historyOf(row.model).set(row.minute_unix_ms, {
        requests: row.requests || 0,
        successes: row.successes || 0,
        failures: row.failures || 0,
        p50_ms: row.p50_ms ?? null,
        p95_ms: row.p95_ms ?? null,
        p99_ms: row.p99_ms ?? null,
        failovers: row.failovers ?? 0,
        server: true,
      });
    }
    state.sigs = {}; // draw everything again
    if (state.status) render();
  }

  // Keep the stored minutes fresh while the page is open.
  setInterval(() => {
    if (state.historyServer === true && state.conn === 'live') loadHistory();
  }, MINUTE_MS);

  /** The last hour as 60 slots (oldest first) of `model`'s minutes, or of all models summed. */
  function slots(model, nowMs) {
    const last = Math.floor(nowMs / MINUTE_MS) * MINUTE_MS;
    const models = model === null ? [...state.history.keys()] : [model];
    const out = [];
    for (let i = 59; i >= 0; i--) {
      const minute = last - i * MINUTE_MS;
      let any = false;
      const slot = { minute, requests: 0, failures: 0, successes: 0, failovers: 0, p95_ms: null };
      let serverFailovers = false;
      for (const m of models) {
        const e = state.history.has(m) ? state.history.get(m).get(minute) : undefined;
        if (!e) continue;
        any = true;
        slot.requests += e.requests;
        slot.failures += e.failures;
        slot.successes += e.successes;
        if (e.p95_ms !== null && (slot.p95_ms === null || e.p95_ms > slot.p95_ms)) slot.p95_ms = e.p95_ms;
        if (e.server && e.failovers !== null) {
          slot.failovers += e.failovers;
          serverFailovers = true;
        }
      }
      if (!serverFailovers) {
        const counts = state.failoversPerMinute.get(minute);
        if (counts) {
          for (const [from, n] of counts) {
            if (model === null || from === model) {
              slot.failovers += n;
              any = true;
            }
          }
        }
      }
      out.push(any ? slot : null);
    }
    return out;
  }

  // ---------------------------------------------------------------- charts

  /** Bars per minute: requests (grey-blue), the failing part of them (red), failovers (amber ticks). */
  function barChart(container, data, opts) {
    const width = Math.max(120, Math.floor(container.clientWidth || opts.width || 300));
    const height = opts.height;
    const top = 14;
    const bottom = opts.axis ? 14 : 2;
    const plotH = height - top - bottom;
    const max = Math.max(1, ...data.map((d) => (d ? d.requests : 0)));
    const step = width / data.length;
    const barW = Math.max(1, step - (step > 4 ? 1.5 : 0.5));
    const sig = JSON.stringify([width, height, data]);
    if (container.__sig === sig) return;
    container.__sig = sig;

    const svg = s('svg', {
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      class: 'chart',
      role: 'img',
      'aria-label': opts.label,
    });
    svg.append(s('line', { x1: 0, x2: width, y1: top + plotH + 0.5, y2: top + plotH + 0.5, class: 'axis' }));
    svg.append(s('line', { x1: 0, x2: width, y1: top + 0.5, y2: top + 0.5, class: 'grid' }));
    let anyData = false;
    data.forEach((d, i) => {
      const x = i * step;
      if (!d) {
        svg.append(s('rect', { x, y: top + plotH - 1, width: barW, height: 1, class: 'nodata' }));
        return;
      }
      anyData = true;
      const rh = (d.requests / max) * plotH;
      const fh = (d.failures / max) * plotH;
      const g = s('g', null);
      if (d.requests > 0) g.append(s('rect', { x, y: top + plotH - rh, width: barW, height: rh, class: 'bar-req' }));
      if (d.failures > 0) g.append(s('rect', { x, y: top + plotH - fh, width: barW, height: Math.max(fh, 1), class: 'bar-fail' }));
      if (d.failovers > 0) g.append(s('rect', { x, y: top - 6, width: barW, height: 4, class: 'bar-fo' }));
      // A transparent column carries the minute's tooltip.
      const rate = d.requests ? (d.requests - d.failures) / d.requests : null;
      const tip =
        `${fmtTime(d.minute).slice(0, 5)} — ${d.requests} requests, ${d.failures} failures` +
        (rate !== null ? ` (${fmtPct(rate)} ok)` : '') +
        (d.failovers ? `, ${d.failovers} failovers` : '') +
        (d.p95_ms !== null ? `, p95 ${fmtMs(d.p95_ms)}` : '');
      g.append(s('rect', { x, y: 0, width: step, height, class: 'hit' }, s('title', { text: tip })));
      svg.append(g);
    });
    svg.append(s('text', { x: 2, y: 10, class: 'label' }, `${max}/min`));
    if (!anyData) {
      svg.append(s('text', { x: width / 2, y: top + plotH / 2 + 4, class: 'label center' }, 'no data yet'));
    }
    if (opts.axis) {
      svg.append(s('text', { x: 2, y: height - 2, class: 'label' }, '−60 min'));
      svg.append(s('text', { x: width / 2, y: height - 2, class: 'label center' }, '−30 min'));
      svg.append(s('text', { x: width - 2, y: height - 2, class: 'label end' }, 'now'));
    }
    container.replaceChildren(svg);
  }

  // ---------------------------------------------------------------- render

  function render() {
    const st = state.status;
    if (!st) return;
    renderHeader(st);
    renderOverallChart(st);
    renderRoutes(st);
    renderModels(st);
    renderFailovers(st);
    renderIncidents(st);
    renderAlerts(st);
    renderChaos(st);
    renderSilences(st);
    renderNotices(st);
    renderSelects(st);
  }

  function renderHeader(st) {
    const metrics = st.metrics || {};
    const overall = metrics.overall || {};
    const win = WINDOWS[state.window];
    const updated = $('updated');
    const taken = metrics.taken_unix_ms || Date.now();
    setText(updated, fmtTime(taken));
    updated.setAttribute('datetime', new Date(taken).toISOString());
    setData(updated, 'unix-ms', taken);
    updated.title = fmtDateTime(taken);

    const req = (overall.requests && overall.requests[state.window]) || { answered: 0, degraded: 0, failed: 0 };
    const total = req.answered + req.degraded + req.failed;
    const avail = total ? req.answered / total : null;
    setText($('availability'), fmtPct(avail, 2));
    setData($('stat-availability'), 'level', availabilityClass(avail));
    setText(
      $('availability-sub'),
      `${req.answered} answered · ${req.degraded} degraded · ${req.failed} failed (${win.label})` +
        (overall.reliability !== null && overall.reliability !== undefined
          ? ` · last hour ${fmtPct(overall.reliability, 2)}`
          : ''),
    );

    setText($('rps'), fmtRate(total / win.seconds));
    const att = overall.attempts && overall.attempts[state.window];
    if (att) {
      const c = att.counts || {};
      const attempts = (c.successes || 0) + sumFailures(c) + (c.client_errors || 0);
      setText(
        $('rps-sub'),
        `${fmtRate(attempts / win.seconds)} model calls/s` +
          (att.latency ? ` · p95 ${fmtMs(att.latency.p95)}` : '') +
          (c.rejected ? ` · ${c.rejected} refused by breakers` : ''),
      );
    }

    const models = st.models || [];
    // The gateway's own view of each model (breaker, health, drain) decides what is up;
    // the monitor's overall count is only for a status without it.
    const up = models.length ? models.filter((m) => m.up).length : overall.models_up || 0;
    const count = models.length ? models.length : overall.models || 0;
    setText($('models-up'), `${up} / ${count}`);
    setData($('stat-up'), 'level', up === count ? 'good' : up === 0 ? 'bad' : 'warn');
    const down = models.filter((m) => !m.up).map((m) => m.model);
    const drained = models.filter((m) => m.drained).map((m) => m.model);
    setText(
      $('models-up-sub'),
      [down.length ? `down: ${down.join(', ')}` : 'all up', drained.length ? `drained: ${drained.join(', ')}` : '']
        .filter(Boolean)
        .join(' · '),
    );

    const hash = $('config-hash');
    setText(hash, shortHash(st.config_hash));
    hash.title = st.config_hash || '';
    const cfg = metrics.config;
    const reload = $('config-reload');
    if (!cfg) {
      setText(reload, 'no reload since start');
      setData(reload, 'level', 'none');
    } else if (cfg.accepted) {
      setText(reload, `reloaded ${fmtTime(cfg.at_unix_ms)}`);
      setData(reload, 'level', 'good');
    } else {
      setText(
        reload,
        `reload refused ${fmtTime(cfg.at_unix_ms)}: ${cfg.problems} problem${cfg.problems === 1 ? '' : 's'}` +
          (cfg.refused_in_a_row > 1 ? `, ${cfg.refused_in_a_row} in a row` : '') +
          ' — the previous config serves',
      );
      setData(reload, 'level', 'bad');
    }
    reload.title = cfg ? fmtDateTime(cfg.at_unix_ms) : '';
    renderCluster(st.cluster);
    setText($('routes-window'), win.label);
    setText($('models-window'), win.label);
    setText($('mttr'), overall.mttr_seconds !== null && overall.mttr_seconds !== undefined ? `MTTR ${fmtDur(overall.mttr_seconds)}` : '');
    renderHistorySource();
  }

  // Cluster mode: the replicas sharing through Redis, and their requests summed.
  function renderCluster(cl) {
    const stat = $('stat-cluster');
    stat.hidden = !cl;
    if (!cl) return;
    const n = cl.replicas.length;
    setText($('cluster-replicas'), cl.connected ? `${n} replica${n === 1 ? '' : 's'}` : 'link down');
    setText(
      $('cluster-sub'),
      cl.connected
        ? `${fmtPct(cl.availability)} of ${cl.requests} requests answered, last 5 min`
        : 'serving on its own state until Redis is back',
    );
    setData(stat, 'state', cl.connected ? 'up' : 'down');
    stat.title = `this replica: ${cl.replica}` + (n ? ` · replicas: ${cl.replicas.join(', ')}` : '') +
      ` · checks ${cl.checking} model${cl.checking === 1 ? '' : 's'} for the cluster`;
  }

  function renderHistorySource() {
    const el = $('history-source');
    if (state.historyServer === true) setText(el, 'from the gateway’s history');
    else if (state.liveSince !== null) setText(el, `from live updates since ${fmtTime(state.liveSince)}`);
    else setText(el, '');
  }

  function renderOverallChart(st) {
    const now = (st.metrics && st.metrics.taken_unix_ms) || Date.now();
    barChart($('overall-chart'), slots(null, now), {
      height: 96,
      axis: true,
      label: 'requests and failures per minute over the last hour, every model',
    });
  }

  function modelState(st, name) {
    const control = (st.models || []).find((m) => m.model === name);
    const metrics = ((st.metrics && st.metrics.models) || []).find((m) => m.model === name);
    return { control, metrics };
  }

  function pill(st, name) {
    const { control, metrics } = modelState(st, name);
    const breaker = (control && control.breaker) || (metrics && metrics.breaker) || 'unknown';
    const up = control ? control.up : true;
    const b = BREAKER[breaker];
    return h(
      'span',
      { class: 'pill', 'data-breaker': breaker, 'data-up': String(up), title: `${name}: breaker ${breaker}${up ? '' : ', down'}` },
      h('span', { class: 'pill-icon', 'aria-hidden': 'true' }, b ? b.icon : '?'),
      h('span', { class: 'pill-name' }, name),
      up ? null : h('span', { class: 'pill-down' }, 'down'),
      control && control.drained ? h('span', { class: 'pill-down' }, 'drained') : null,
    );
  }

  function renderRoutes(st) {
    const metricsRoutes = (st.metrics && st.metrics.routes) || {};
    const routes = (st.routes || []).map((r) => ({ name: r.name, models: r.models || [] }));
    for (const name of Object.keys(metricsRoutes)) {
      if (!routes.some((r) => r.name === name)) routes.push({ name, models: null });
    }
    const rows = routes.map((r) => {
      const w = (metricsRoutes[r.name] && metricsRoutes[r.name][state.window]) || { answered: 0, degraded: 0, failed: 0 };
      const models = r.models
        ? r.models.map((m) => {
            const { control } = modelState(st, m);
            return [m, control ? control.breaker : '', control ? control.up : true, control ? control.drained : false];
          })
        : null;
      return { name: r.name, models, w };
    });
    if (!changed('routes', rows)) return;
    const box = $('routes');
    if (!rows.length) {
      box.replaceChildren(h('p', { class: 'empty' }, 'no route'));
      return;
    }
    box.replaceChildren(
      ...rows.map((r) => {
        const total = r.w.answered + r.w.degraded + r.w.failed;
        const avail = total ? r.w.answered / total : null;
        const chain = r.models
          ? h(
              'div',
              { class: 'chain' },
              r.models.flatMap(([m], i) => (i ? [h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→'), pill(st, m)] : [pill(st, m)])),
            )
          : h('div', { class: 'chain muted' }, 'every model (default route)');
        return h(
          'div',
          { class: 'route', 'data-route': r.name, 'data-level': availabilityClass(avail) },
          h('div', { class: 'route-name' }, h('strong', null, r.name), h('span', { class: 'route-avail' }, fmtPct(avail))),
          chain,
          h(
            'div',
            { class: 'route-counts' },
            h('span', { class: 'count ok' }, h('b', null, r.w.answered), ' answered'),
            h('span', { class: 'count warn' }, h('b', null, r.w.degraded), ' degraded'),
            h('span', { class: 'count bad' }, h('b', null, r.w.failed), ' failed'),
          ),
        );
      }),
    );
  }

  // ------------------------------------------------------------ model cards

  function makeCard(name) {
    const card = { name };
    const kv = (key, label, title) => {
      const dd = h('dd', { class: 'v' }, '—');
      card[key] = dd;
      return h('div', { class: 'kv', title: title || null }, h('dt', null, label), dd);
    };
    card.upBadge = h('span', { class: 'badge up-badge' }, '');
    card.drainedBadge = h('span', { class: 'badge drained-badge', hidden: true }, 'drained');
    card.breakerIcon = h('span', { class: 'breaker-icon', 'aria-hidden': 'true' }, '');
    card.breakerLabel = h('span', { class: 'breaker-label' }, '');
    card.breakerSince = h('span', { class: 'breaker-since' }, '');
    card.breaker = h('div', { class: 'breaker', title: '' }, card.breakerIcon, h('div', null, h('div', { class: 'breaker-kind' }, 'breaker'), card.breakerLabel, card.breakerSince));
    card.healthIcon = h('span', { class: 'health-icon', 'aria-hidden': 'true' }, '');
    card.healthLabel = h('span', { class: 'health-label' }, '');
    card.health = h('div', { class: 'health' }, card.healthIcon, h('div', null, h('div', { class: 'breaker-kind' }, 'health'), card.healthLabel));
    card.shareBar = h('span', { class: 'share-fill' });
    card.classes = h('div', { class: 'classes' }, '');
    card.incident = h('div', { class: 'incident-note', hidden: true }, '');
    card.spark = h('div', { class: 'spark' });
    if (chartObserver) chartObserver.observe(card.spark);
    card.result = h('div', { class: 'result', 'data-result-for': name, role: 'status', 'aria-live': 'polite' }, '');
    card.buttons = [];
    const actions = h(
      'div',
      { class: 'actions' },
      ACTIONS.map((g) =>
        h(
          'div',
          { class: 'action-group', role: 'group', 'aria-label': g.group },
          h('span', { class: 'group-label' }, g.group),
          g.items.map(([action, label]) => {
            const b = h('button', { type: 'button', class: `act act-${action}`, 'data-action': action, 'data-model': name }, label);
            b.addEventListener('click', () => act(card, action, b));
            card.buttons.push(b);
            return b;
          }),
        ),
      ),
    );
    card.el = h(
      'section',
      { class: 'model', 'data-model': name, 'aria-label': `model ${name}` },
      h('header', { class: 'model-head' }, h('h3', { class: 'model-name' }, name), card.upBadge, card.drainedBadge),
      h('div', { class: 'states' }, card.breaker, card.health),
      card.incident,
      h(
        'dl',
        { class: 'kvs' },
        kv('success', 'success rate', 'successes / (successes + failures) over the window'),
        kv('rps', 'requests/s', 'calls to this model per second over the window'),
        kv('consecutive', 'consecutive failures'),
        kv('p50', 'p50'),
        kv('p95', 'p95'),
        kv('p99', 'p99'),
        kv('share', 'traffic share', 'the share of its routes’ traffic this model takes'),
        kv('failovers', 'failovers from', 'requests that moved from this model to the next, since the start'),
        kv('rejected', 'refused', 'calls the breaker refused over the window'),
      ),
      card.classes,
      h('div', { class: 'spark-head' }, h('span', null, 'last hour'), h('span', { class: 'legend' }, h('span', { class: 'key key-req' }), 'req/min', h('span', { class: 'key key-fail' }), 'failures')),
      card.spark,
      actions,
      card.result,
    );
    // The share bar sits in the share cell.
    card.share.append(h('span', { class: 'share-bar' }, card.shareBar));
    return card;
  }

  function renderModels(st) {
    const names = [];
    for (const m of st.models || []) names.push(m.model);
    for (const m of (st.metrics && st.metrics.models) || []) if (!names.includes(m.model)) names.push(m.model);
    const box = $('models');
    for (const [name, card] of state.cards) {
      if (!names.includes(name)) {
        card.el.remove();
        if (chartObserver) chartObserver.unobserve(card.spark);
        state.cards.delete(name);
      }
    }
    const order = [];
    for (const name of names) {
      let card = state.cards.get(name);
      if (!card) {
        card = makeCard(name);
        state.cards.set(name, card);
      }
      order.push(card.el);
      updateCard(st, card);
    }
    for (const el of [...box.children]) if (!order.includes(el)) el.remove(); // the placeholder
    const current = [...box.children];
    if (current.length !== order.length || current.some((el, i) => el !== order[i])) {
      box.append(...order); // moves cards without recreating them
    }
    if (!names.length) box.replaceChildren(h('p', { class: 'empty' }, 'no model'));
  }

  function updateCard(st, card) {
    const { control, metrics } = modelState(st, card.name);
    const breaker = (control && control.breaker) || (metrics && metrics.breaker) || 'unknown';
    const health = (control && control.health) || (metrics && metrics.health) || 'unknown';
    const up = control ? !!control.up : !['open', 'forced_open'].includes(breaker) && health !== 'unhealthy';
    const drained = control ? !!control.drained : false;
    const el = card.el;
    setData(el, 'breaker', breaker);
    setData(el, 'health', health);
    setData(el, 'up', up);
    setData(el, 'drained', drained);

    setText(card.upBadge, up ? 'up' : 'down');
    setData(card.upBadge, 'up', up);
    card.drainedBadge.hidden = !drained;

    const b = BREAKER[breaker] || { label: breaker, icon: '?', hint: '' };
    setData(card.breaker, 'breaker', breaker);
    setText(card.breakerIcon, b.icon);
    setText(card.breakerLabel, b.label);
    card.breaker.title = `breaker ${breaker}: ${b.hint}`;
    setText(card.breakerSince, metrics && metrics.breaker_since_seconds !== undefined ? `for ${fmtDur(metrics.breaker_since_seconds)}` : '');

    const hl = HEALTH[health] || { label: health, icon: '?' };
    setData(card.health, 'health', health);
    setText(card.healthIcon, hl.icon);
    setText(card.healthLabel, hl.label);

    const win = WINDOWS[state.window];
    const w = metrics && metrics.windows && metrics.windows[state.window];
    const c = (w && w.counts) || { successes: 0, failures: {}, client_errors: 0, rejected: 0 };
    const failures = sumFailures(c);
    const decided = c.successes + failures;
    const rate = decided ? c.successes / decided : null;
    setText(card.success, fmtPct(rate));
    setData(card.success, 'level', availabilityClass(rate));
    const calls = c.successes + failures + (c.client_errors || 0);
    setText(card.rps, fmtRate(calls / ((w && w.span_seconds) || win.seconds)));
    const lat = w && w.latency;
    setText(card.p50, lat ? fmtMs(lat.p50) : '—');
    setText(card.p95, lat ? fmtMs(lat.p95) : '—');
    setText(card.p99, lat ? fmtMs(lat.p99) : '—');
    const consecutive = metrics ? metrics.consecutive_failures : null;
    setText(card.consecutive, consecutive === null || consecutive === undefined ? '—' : consecutive);
    setData(card.consecutive, 'level', consecutive ? 'bad' : 'none');
    const share = control && control.traffic_share !== undefined && control.traffic_share !== null ? control.traffic_share : null;
    const shareText = card.share.firstChild;
    if (shareText && shareText.nodeType === Node.TEXT_NODE) shareText.textContent = share === null ? '—' : fmtPct(share, 0);
    card.shareBar.style.width = `${share === null ? 0 : Math.round(Math.max(0, Math.min(1, share)) * 100)}%`;
    setText(card.failovers, metrics ? metrics.failovers_from : '—');
    setText(card.rejected, c.rejected || 0);
    setData(card.rejected, 'level', c.rejected ? 'warn' : 'none');

    const classes = Object.entries(c.failures || {}).filter(([, n]) => n > 0);
    const extra = [];
    if (c.client_errors) extra.push(`${c.client_errors} client errors`);
    if (metrics && metrics.credentials_rejected) extra.push(`${metrics.credentials_rejected} credentials rejected`);
    setText(
      card.classes,
      classes.length || extra.length
        ? [classes.map(([k, n]) => `${k.replace(/_/g, ' ')} ${n}`).join(' · '), extra.join(' · ')].filter(Boolean).join(' · ')
        : 'no failure',
    );
    setData(card.classes, 'level', classes.length ? 'bad' : 'none');

    const open = metrics && metrics.open_incident_seconds;
    card.incident.hidden = open === null || open === undefined;
    if (!card.incident.hidden) setText(card.incident, `incident open for ${fmtDur(open)}`);

    const now = (st.metrics && st.metrics.taken_unix_ms) || Date.now();
    barChart(card.spark, slots(card.name, now), { height: 58, axis: false, label: `${card.name}: requests and failures per minute over the last hour` });

  }

  async function act(card, action, button) {
    const result = card.result;
    button.disabled = true;
    result.className = 'result pending';
    setData(result, 'state', 'pending');
    setData(result, 'action', action);
    setText(result, `${ACTION_LABEL[action] || action}…`);
    try {
      const response = await fetch(`/admin/models/${encodeURIComponent(card.name)}/${action}`, {
        method: 'POST',
        headers: authHeaders({ Accept: 'application/json' }),
        cache: 'no-store',
      });
      if (!response.ok) {
        const message = await errorMessage(response);
        result.className = 'result error';
        setData(result, 'state', 'error');
        setText(result, `${ACTION_LABEL[action] || action} refused (${response.status}): ${message}`);
        if (response.status === 401 || response.status === 403) askToken(`actions need an admin token: ${message}`);
        return;
      }
      const body = await response.json();
      result.className = 'result ok';
      setData(result, 'state', 'ok');
      setText(
        result,
        `${fmtTime(Date.now())} ${ACTION_LABEL[body.action] || body.action}: breaker ${body.breaker}, health ${body.health}, ` +
          `${body.up ? 'up' : 'down'}${body.drained ? ', drained' : ''}`,
      );
      applyAction(body);
    } catch (err) {
      result.className = 'result error';
      setData(result, 'state', 'error');
      setText(result, `${ACTION_LABEL[action] || action} failed: ${err && err.message ? err.message : err}`);
    } finally {
      button.disabled = false;
    }
  }

  /** Shows an action's answer at once; the next status confirms it. */
  function applyAction(body) {
    const st = state.status;
    if (!st || !body || !body.model) return;
    const control = (st.models || []).find((m) => m.model === body.model);
    if (control) {
      for (const k of ['breaker', 'health', 'drained', 'up']) if (body[k] !== undefined) control[k] = body[k];
    }
    const metrics = ((st.metrics && st.metrics.models) || []).find((m) => m.model === body.model);
    if (metrics) {
      if (body.breaker !== undefined && metrics.breaker !== body.breaker) {
        metrics.breaker = body.breaker;
        metrics.breaker_since_seconds = 0;
      }
      if (body.health !== undefined) metrics.health = body.health;
    }
    render();
  }

  // ------------------------------------------------------------ failovers, incidents

  function renderFailovers(st) {
    const list = ((st.metrics && st.metrics.failovers) || []).slice();
    // Runs of the same move close together read as one row with a count.
    const groups = [];
    for (const f of list) {
      const g = groups[groups.length - 1];
      if (g && g.from === f.from && g.to === f.to && g.reason === f.reason && g.oldest - f.at_unix_ms <= 5000) {
        g.count += 1;
        g.oldest = f.at_unix_ms;
        g.latencies.push(f.latency_ms);
      } else {
        groups.push({ from: f.from, to: f.to, reason: f.reason, newest: f.at_unix_ms, oldest: f.at_unix_ms, count: 1, latencies: [f.latency_ms] });
      }
    }
    if (!changed('failovers', groups)) return;
    const box = $('failovers');
    if (!groups.length) {
      box.replaceChildren(h('li', { class: 'empty' }, 'none'));
      return;
    }
    box.replaceChildren(
      ...groups.slice(0, 40).map((g) => {
        const maxLat = Math.max(...g.latencies.filter((x) => typeof x === 'number'), 0);
        return h(
          'li',
          { class: 'failover', 'data-from': g.from, 'data-to': g.to, 'data-reason': g.reason },
          h('time', { class: 'mono when', title: fmtDateTime(g.newest) }, fmtTime(g.newest, true)),
          h('span', { class: 'move' }, h('b', null, g.from), h('span', { class: 'arrow', 'aria-hidden': 'true' }, ' → '), h('span', { class: 'sr' }, ' to '), h('b', null, g.to)),
          h('span', { class: 'reason', 'data-reason': g.reason }, g.reason.replace(/_/g, ' ')),
          g.count > 1
            ? h('span', { class: 'times', title: `${g.count} failovers from ${fmtTime(g.oldest, true)} to ${fmtTime(g.newest, true)}` }, `×${g.count}`)
            : null,
          h('span', { class: 'lat muted', title: 'time spent on the failed model' }, fmtMs(maxLat)),
        );
      }),
    );
  }

  function renderIncidents(st) {
    const metrics = st.metrics || {};
    const now = metrics.taken_unix_ms || Date.now();
    const incidents = (metrics.incidents || []).slice();
    const open = incidents.filter((i) => i.ended_unix_ms === null || i.ended_unix_ms === undefined);
    const ended = incidents
      .filter((i) => i.ended_unix_ms !== null && i.ended_unix_ms !== undefined)
      .sort((a, b) => b.ended_unix_ms - a.ended_unix_ms)
      .slice(0, 10);
    open.sort((a, b) => a.started_unix_ms - b.started_unix_ms);
    const rows = [
      ...open.map((i) => ({ open: true, model: i.model, started: i.started_unix_ms, dur: Math.max(0, (now - i.started_unix_ms) / 1000) })),
      ...ended.map((i) => ({ open: false, model: i.model, started: i.started_unix_ms, ended: i.ended_unix_ms, dur: i.time_to_recover_seconds })),
    ];
    if (!changed('incidents', rows)) return;
    const box = $('incidents');
    if (!rows.length) {
      box.replaceChildren(h('li', { class: 'empty' }, 'none'));
      return;
    }
    box.replaceChildren(
      ...rows.map((r) =>
        h(
          'li',
          { class: `incident ${r.open ? 'open' : 'ended'}`, 'data-model': r.model, 'data-open': String(r.open) },
          h('span', { class: 'badge incident-state' }, r.open ? 'open' : 'recovered'),
          h('b', null, r.model),
          r.open
            ? h('span', null, `since ${fmtTime(r.started)} · open for `, h('b', null, fmtDur(r.dur)))
            : h('span', null, `${fmtTime(r.started)} → ${fmtTime(r.ended)} · recovered in `, h('b', null, fmtDur(r.dur))),
        ),
      ),
    );
  }

  // The fault injection in front of every model (hive-chaos): on or off, and a switch.
  function renderChaos(st) {
    const chaos = st.chaos || { enabled: false, rules: 0, injected: 0 };
    setData($('stat-chaos'), 'enabled', String(!!chaos.enabled));
    setText($('chaos-state'), chaos.enabled ? 'ON' : 'off');
    setText(
      $('chaos-sub'),
      chaos.rules ? `${chaos.rules} rule${chaos.rules === 1 ? '' : 's'} · ${chaos.injected} injected` : 'no rule',
    );
    const button = $('chaos-switch');
    setData(button, 'switch', chaos.enabled ? 'disable' : 'enable');
    setText(button, chaos.enabled ? 'Switch off' : 'Switch on');
    button.hidden = !chaos.rules && !chaos.enabled;
  }

  async function switchChaos(button) {
    const to = button.getAttribute('data-switch');
    button.disabled = true;
    try {
      const response = await fetch(`/admin/chaos/${to}`, {
        method: 'POST',
        headers: authHeaders({ Accept: 'application/json' }),
        cache: 'no-store',
      });
      if (!response.ok) {
        const message = await errorMessage(response);
        setText($('chaos-sub'), `refused (${response.status}): ${message}`);
        if (response.status === 401 || response.status === 403) askToken(`chaos needs an admin token: ${message}`);
        return;
      }
      const body = await response.json();
      if (state.status) {
        state.status.chaos = {
          enabled: body.enabled,
          rules: (body.rules && body.rules.rules ? body.rules.rules.length : 0),
          injected: (body.stats || []).reduce((sum, s) => sum + (s.injected || 0), 0),
        };
        renderChaos(state.status);
      }
    } catch (err) {
      setText($('chaos-sub'), `failed: ${err && err.message ? err.message : err}`);
    } finally {
      button.disabled = false;
    }
  }

  // The alerts the alert manager has firing (muted ones too: a silence shows beside them).
  function renderAlerts(st) {
    const rows = (st.alerts || []).map((a) => ({
      rule: a.rule,
      severity: a.severity,
      summary: a.summary,
      escalated: !!a.escalated,
    }));
    if (!changed('alerts', rows)) return;
    const box = $('alerts');
    if (!rows.length) {
      box.replaceChildren(h('li', { class: 'empty' }, 'none'));
      return;
    }
    box.replaceChildren(
      ...rows.map((r) =>
        h(
          'li',
          { class: 'incident open alert', 'data-rule': r.rule, 'data-severity': String(r.severity) },
          h('span', { class: 'badge incident-state' }, `${String(r.severity).toLowerCase()}${r.escalated ? ' ↑' : ''}`),
          h('b', null, r.rule),
          h('span', null, r.summary || ''),
        ),
      ),
    );
  }

  // ------------------------------------------------------------ silences

  function silenceTarget(x) {
    const parts = [];
    if (x.model) parts.push(`model ${x.model}`);
    if (x.route) parts.push(`route ${x.route}`);
    if (x.rule) parts.push(`rule ${x.rule}`);
    return parts.length ? parts.join(', ') : 'every alert';
  }

  function renderSilences(st) {
    const list = (st.silences || []).slice().sort((a, b) => {
      const aa = a.state === 'active' ? 0 : 1;
      const bb = b.state === 'active' ? 0 : 1;
      return aa - bb || b.id - a.id;
    });
    const box = $('silences');
    if (!list.length) {
      if (changed('silences', 'none')) box.replaceChildren(h('li', { class: 'empty' }, 'none'));
      return;
    }
    state.sigs.silences = 'some';
    const existing = new Map();
    for (const li of box.querySelectorAll('li[data-silence-id]')) existing.set(li.getAttribute('data-silence-id'), li);
    box.querySelectorAll('li.empty').forEach((li) => li.remove());
    const order = [];
    for (const x of list) {
      const id = String(x.id);
      let li = existing.get(id);
      if (!li) {
        const expire = h('button', { type: 'button', class: 'expire', 'data-expire': id, title: 'end this silence now' }, 'Expire');
        expire.addEventListener('click', () => expireSilence(id, expire));
        li = h(
          'li',
          { class: 'silence', 'data-silence-id': id },
          h('span', { class: 'badge silence-state' }, ''),
          h('span', { class: 'silence-what' }, ''),
          h('span', { class: 'silence-left mono' }, ''),
          expire,
          h('div', { class: 'silence-why muted' }, ''),
        );
      }
      existing.delete(id);
      const active = x.state === 'active';
      setData(li, 'state', x.state);
      setText(li.querySelector('.silence-state'), active ? 'active' : 'expired');
      setText(li.querySelector('.silence-what'), `#${id} ${silenceTarget(x)}`);
      setText(li.querySelector('.silence-left'), active ? `${fmtDur(x.expires_in_seconds)} left` : `ended ${x.ends_at ? fmtTime(Date.parse(x.ends_at)) : ''}`);
      li.querySelector('.expire').hidden = !active;
      setText(li.querySelector('.silence-why'), [x.comment ? `“${x.comment}”` : '', x.created_by ? `by ${x.created_by}` : ''].filter(Boolean).join(' '));
      order.push(li);
    }
    for (const li of existing.values()) li.remove();
    const current = [...box.children];
    if (current.length !== order.length || current.some((el, i) => el !== order[i])) box.append(...order);
  }

  function silenceResult(ok, text) {
    const el = $('silence-result');
    el.className = `result ${ok ? 'ok' : 'error'}`;
    setData(el, 'state', ok ? 'ok' : 'error');
    setText(el, text);
  }

  async function addSilence(ev) {
    ev.preventDefault();
    const body = { for: $('silence-for').value.trim() };
    const model = $('silence-model').value;
    const route = $('silence-route').value;
    const comment = $('silence-comment').value.trim();
    if (model) body.model = model;
    if (route) body.route = route;
    if (comment) body.comment = comment;
    const button = $('silence-add');
    button.disabled = true;
    try {
      const response = await fetch('/admin/silences', {
        method: 'POST',
        headers: authHeaders({ 'Content-Type': 'application/json', Accept: 'application/json' }),
        body: JSON.stringify(body),
        cache: 'no-store',
      });
      if (!response.ok) {
        const message = await errorMessage(response);
        silenceResult(false, `silence refused (${response.status}): ${message}`);
        if (response.status === 401 || response.status === 403) askToken(`silences need an admin token: ${message}`);
        return;
      }
      const silence = await response.json();
      silenceResult(true, `silence #${silence.id} added: ${silenceTarget(silence)} for ${fmtDur(silence.expires_in_seconds)}`);
      $('silence-comment').value = '';
      if (state.status) {
        state.status.silences = (state.status.silences || []).filter((x) => x.id !== silence.id).concat([silence]);
        renderSilences(state.status);
      }
    } catch (err) {
      silenceResult(false, `silence failed: ${err && err.message ? err.message : err}`);
    } finally {
      button.disabled = false;
    }
  }

  async function expireSilence(id, button) {
    button.disabled = true;
    try {
      const response = await fetch(`/admin/silences/${encodeURIComponent(id)}`, {
        method: 'DELETE',
        headers: authHeaders({ Accept: 'application/json' }),
        cache: 'no-store',
      });
      if (!response.ok) {
        const message = await errorMessage(response);
        silenceResult(false, `expiring #${id} refused (${response.status}): ${message}`);
        if (response.status === 401 || response.status === 403) askToken(`silences need an admin token: ${message}`);
        return;
      }
      const silence = await response.json();
      silenceResult(true, `silence #${id} expired`);
      if (state.status) {
        state.status.silences = (state.status.silences || []).map((x) => (String(x.id) === String(id) ? silence : x));
        renderSilences(state.status);
      }
    } catch (err) {
      silenceResult(false, `expiring #${id} failed: ${err && err.message ? err.message : err}`);
    } finally {
      button.disabled = false;
    }
  }

  function fillSelect(select, values) {
    const sig = values.join('\n');
    if (select.__sig === sig) return;
    select.__sig = sig;
    const keep = select.value;
    select.replaceChildren(h('option', { value: '' }, 'any'), ...values.map((v) => h('option', { value: v }, v)));
    if (values.includes(keep)) select.value = keep;
  }

  function renderSelects(st) {
    fillSelect($('silence-model'), (st.models || []).map((m) => m.model));
    const routes = (st.routes || []).map((r) => r.name);
    for (const name of Object.keys((st.metrics && st.metrics.routes) || {})) if (!routes.includes(name)) routes.push(name);
    fillSelect($('silence-route'), routes);
  }

  // ------------------------------------------------------------ notices, extras

  function renderNotices(st) {
    const notes = [];
    if (st.refused_prefill && st.refused_prefill.length) {
      notes.push(['warn', `Refused a prefill (no stream continuation goes to them until the next reload): ${st.refused_prefill.join(', ')}`]);
    }
    const cfg = st.metrics && st.metrics.config;
    if (cfg && !cfg.accepted) {
      notes.push(['bad', `The last config reload (${fmtTime(cfg.at_unix_ms)}) was refused with ${cfg.problems} problem(s); the previous config still serves.`]);
    }
    if (changed('notices', notes)) {
      $('notices').replaceChildren(...notes.map(([level, text]) => h('div', { class: 'notice', 'data-level': level }, text)));
    }
    setText($('footer-extra'), st.continuations ? `· ${st.continuations} cut streams continued by another model` : '');
  }

  async function probeExtras() {
    const link = $('report-link');
    const head = async (headers) => {
      try {
        const r = await fetch('/dashboard/report', { method: 'HEAD', headers, cache: 'no-store' });
        return r.status;
      } catch (_) {
        return 0;
      }
    };
    let status = await head({});
    link.__needsToken = false;
    if ((status === 401 || status === 403) && getToken()) {
      status = await head(authHeaders());
      link.__needsToken = status === 200;
    }
    link.hidden = status !== 200;
  }

  // The report behind a token: fetched with the header, then shown from memory.
  async function openReport(ev) {
    const link = $('report-link');
    if (!link.__needsToken) return; // a plain link
    ev.preventDefault();
    const win = window.open('', '_blank');
    try {
      const r = await fetch('/dashboard/report', { headers: authHeaders(), cache: 'no-store' });
      if (!r.ok) throw new Error(await errorMessage(r));
      const blob = new Blob([await r.text()], { type: 'text/html' });
      const url = URL.createObjectURL(blob);
      if (win) win.location.href = url;
      else window.location.href = url;
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      if (win) win.close();
      setText($('token-note'), `report: ${err && err.message ? err.message : err}`);
    }
  }

  // ------------------------------------------------------------ start

  function start() {
    $('token-form').addEventListener('submit', saveToken);
    $('token-clear').addEventListener('click', forgetToken);
    $('silence-form').addEventListener('submit', addSilence);
    $('report-link').addEventListener('click', openReport);
    $('chaos-switch').addEventListener('click', (e) => switchChaos(e.currentTarget));
    for (const b of document.querySelectorAll('button.win')) {
      b.addEventListener('click', () => {
        state.window = b.getAttribute('data-window');
        for (const o of document.querySelectorAll('button.win')) o.setAttribute('aria-pressed', String(o === b));
        state.sigs = {};
        render();
      });
    }
    // Charts are drawn at their box's width: draw again when a box changes width (a
    // window resize, a scroll bar showing up).
    let resizeTimer = null;
    const redraw = () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(render, 100);
    };
    window.addEventListener('resize', redraw);
    if (typeof ResizeObserver === 'function') {
      const widths = new WeakMap();
      chartObserver = new ResizeObserver((entries) => {
        let grew = false;
        for (const e of entries) {
          const w = Math.floor(e.contentRect.width);
          if (widths.get(e.target) !== w) {
            widths.set(e.target, w);
            grew = true;
          }
        }
        if (grew) redraw();
      });
      chartObserver.observe($('overall-chart'));
    }
    window.addEventListener('online', () => {
      if (state.conn !== 'live') reconnectNow();
    });
    showTokenState('');
    setConn('connecting');
    connect();
    probeExtras();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
