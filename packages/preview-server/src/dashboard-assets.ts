// The dashboard's pages, style and script, served by dashboard.ts. Plain HTML and one small script (no
// build step, no framework): the page reads the internal API through its own server and draws from it.

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function shell(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · previews</title>
<link rel="stylesheet" href="/dashboard.css">
</head>
<body>
${body}
</body>
</html>
`;
}

/** The login form; `error` says why the last attempt failed. */
export function loginPage(title: string, error?: string): string {
  return shell(
    title,
    `<main class="login">
<h1>${escapeHtml(title)}</h1>
<p>Sessions, their previews and their traffic. Sign in with the service's internal key.</p>
<form method="post" action="/login">
<label for="key">Internal key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
${error === undefined ? '' : `<p class="error" role="alert" data-testid="login-error">${escapeHtml(error)}</p>`}
</form>
</main>`,
  );
}

/** The dashboard itself: its parts are drawn by the script. */
export function dashboardPage(title: string, apiPrefix: string): string {
  return shell(
    title,
    `<header>
<h1>${escapeHtml(title)} <span class="muted">previews</span></h1>
<form method="post" action="/logout"><button type="submit" class="quiet" data-testid="logout">Sign out</button></form>
</header>
<main id="app" data-api="${escapeHtml(apiPrefix)}">
<section>
<h2>Sessions</h2>
<p id="sessions-note" class="muted" data-testid="sessions-note"></p>
<table class="sessions" data-testid="sessions">
<thead><tr><th>Session</th><th>State</th><th>Image</th><th>Ports</th><th></th></tr></thead>
<tbody></tbody>
</table>
<div class="forms">
<form id="create" data-testid="create-form">
<h3>New session</h3>
<label>Image <input name="image" required placeholder="sandbox-fixture-vite:latest"></label>
<label>Ports <input name="ports" placeholder="5173, 3000"></label>
<label>Id <input name="sessionId" placeholder="generated"></label>
<button type="submit">Create and start</button>
</form>
<form id="register" data-testid="register-form">
<h3>Register a port</h3>
<label>Session <input name="sessionId" required placeholder="container sandbox-session-…"></label>
<label>Port <input name="port" required inputmode="numeric" placeholder="3000"></label>
<button type="submit">Register</button>
</form>
</div>
<p id="error" class="error" role="alert" data-testid="error"></p>
</section>
<section id="detail" hidden data-testid="detail">
<h2>Session <span id="detail-id"></span></h2>
<h3>Requests <span class="muted" id="log-state" data-testid="log-state"></span></h3>
<table class="log" data-testid="log">
<thead><tr><th>Time</th><th>Status</th><th>Request</th><th>Duration</th><th>Sent</th><th></th></tr></thead>
<tbody></tbody>
</table>
<h3>Run a command</h3>
<form id="exec" data-testid="exec-form">
<input name="command" required placeholder="ls -la /app" aria-label="Command (run with sh -c)">
<button type="submit">Run</button>
</form>
<pre id="exec-output" data-testid="exec-output"></pre>
</section>
</main>
<script src="/dashboard.js"></script>`,
  );
}

export const DASHBOARD_CSS = `
:root { color-scheme: light dark; --fg: #1d2330; --muted: #6b7280; --line: #e3e6eb; --bg: #fff;
  --ok: #137333; --warn: #b06000; --bad: #c5221f; --accent: #1a56db; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8ec; --muted: #9aa1ad; --line: #2e3440; --bg: #14171c;
  --ok: #5bd08a; --warn: #f0a83a; --bad: #ff7b72; --accent: #79a6ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; justify-content: space-between; padding: 12px 24px; border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0; } h2 { font-size: 16px; margin: 24px 0 8px; } h3 { font-size: 14px; margin: 16px 0 6px; }
main { padding: 0 24px 32px; max-width: 1200px; }
main.login { max-width: 360px; margin: 12vh auto; }
main.login form { display: grid; gap: 8px; }
.muted { color: var(--muted); font-weight: normal; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
tr.selected td { background: color-mix(in srgb, var(--accent) 10%, transparent); }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.state { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; border: 1px solid currentColor; }
.state.running { color: var(--ok); } .state.exited, .state.dead { color: var(--bad); } .state.other { color: var(--warn); }
.s2 { color: var(--ok); } .s3 { color: var(--accent); } .s4 { color: var(--warn); } .s5, .s0 { color: var(--bad); }
a { color: var(--accent); }
.ports a, .ports span { margin-right: 10px; white-space: nowrap; }
button { font: inherit; padding: 4px 12px; border: 1px solid var(--line); border-radius: 6px; background: transparent; color: var(--fg); cursor: pointer; }
button:hover { border-color: var(--accent); } button.quiet { border-color: transparent; }
button.danger:hover { border-color: var(--bad); color: var(--bad); }
td button { margin-right: 6px; }
input { font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 6px; background: transparent; color: var(--fg); }
.forms { display: flex; gap: 32px; flex-wrap: wrap; align-items: flex-start; margin-top: 16px; }
.forms form { display: grid; gap: 6px; min-width: 260px; align-content: start; }
.forms label { display: grid; gap: 2px; color: var(--muted); font-size: 12px; }
#exec { display: flex; gap: 8px; } #exec input { flex: 1; font-family: ui-monospace, monospace; }
pre { background: color-mix(in srgb, var(--fg) 5%, transparent); padding: 10px; border-radius: 6px; max-height: 320px; overflow: auto; white-space: pre-wrap; }
pre:empty { display: none; }
.error { color: var(--bad); min-height: 1em; }
.log td.path { font-family: ui-monospace, monospace; word-break: break-all; }
`;

// Runs in the browser. Every call goes to this server's API prefix, with the header that marks the
// dashboard's own requests (see dashboard.ts).
export const DASHBOARD_SCRIPT = `'use strict';
(() => {
  const app = document.getElementById('app');
  const api = app.dataset.api;
  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...children) => {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) node.append(child);
    return node;
  };
  let sessions = [];
  let selected = null;
  let follow = null;

  async function call(method, path, body, signal) {
    const res = await fetch(api + path, {
      method,
      signal,
      headers: { 'x-sandbox-dashboard': '1', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 403) { signedOut(); throw new Error('Signed out: reload the page to sign in again.'); }
    if (!res.ok) {
      const error = await res.json().catch(() => ({ message: res.status + ' ' + res.statusText }));
      throw new Error(error.message + (error.code ? ' (' + error.code + ')' : ''));
    }
    return res;
  }

  function showError(error) { $('error').textContent = error ? String(error.message || error) : ''; }

  // The login expired or was ended elsewhere: stop polling and following, and say so (a reload signs in).
  let polling = null;
  function signedOut() {
    if (polling !== null) { clearInterval(polling); polling = null; }
    if (follow) { follow.close(); follow = null; }
    showError('Signed out: reload the page to sign in again.');
  }

  function stateBadge(state) {
    const kind = state === 'running' ? 'running' : state === 'exited' || state === 'dead' ? state : 'other';
    return el('span', { className: 'state ' + kind, textContent: state });
  }

  function portLinks(session) {
    const cell = el('td', { className: 'ports' });
    for (const port of session.ports) {
      const url = port.urls.path || port.urls.host;
      if (port.registered && url) {
        cell.append(el('a', { href: url, target: '_blank', rel: 'noopener noreferrer', textContent: port.port + ' ↗', title: url }));
      } else {
        cell.append(el('span', { className: 'muted', textContent: port.port + (port.registered ? '' : ' (waiting)') }));
      }
    }
    if (session.ports.length === 0) cell.append(el('span', { className: 'muted', textContent: 'none' }));
    return cell;
  }

  function action(label, run, className) {
    return el('button', { type: 'button', textContent: label, className: className || '', onclick: async (event) => {
      event.stopPropagation();
      showError(null);
      try { await run(); await refresh(); } catch (error) { showError(error); }
    } });
  }

  function drawSessions() {
    const body = document.querySelector('table.sessions tbody');
    body.replaceChildren(...sessions.map((session) => {
      const id = session.sessionId;
      const row = el('tr', { className: id === selected ? 'selected' : '' },
        el('td', {}, el('button', { type: 'button', className: 'quiet', textContent: id, onclick: () => select(id) })),
        el('td', {}, stateBadge(session.state)),
        el('td', { textContent: session.image }),
        portLinks(session),
        el('td', {},
          session.running
            ? action('Stop', () => call('POST', '/sessions/' + id + '/stop'))
            : action('Start', () => call('POST', '/sessions/' + id + '/start')),
          action('Remove', async () => {
            if (!confirm('Remove session ' + id + ' and its container?')) return;
            await call('DELETE', '/sessions/' + id);
            if (selected === id) select(null);
          }, 'danger')));
      row.dataset.session = id;
      return row;
    }));
    $('sessions-note').textContent = sessions.length === 0 ? 'No sessions yet: create one below.' : '';
  }

  async function refresh() {
    try {
      const res = await fetch(api + '/sessions');
      if (res.status === 403) { signedOut(); return; }
      if (res.status === 404) { $('sessions-note').textContent = 'The sessions API is off on this service (SESSIONS_API=false).'; return; }
      sessions = (await res.json()).sessions;
      drawSessions();
    } catch (error) { showError(error); }
  }

  function logRow(entry) {
    const status = entry.status === 0 ? '—' : String(entry.status);
    const note = [entry.kind === 'websocket' ? 'WebSocket' + (entry.closeCode ? ' closed ' + entry.closeCode : '') : '',
      entry.error || '', entry.aborted ? 'aborted' : ''].filter(Boolean).join(' · ');
    const bytes = entry.bytesOut < 1024 ? entry.bytesOut + ' B' : (entry.bytesOut / 1024).toFixed(1) + ' KiB';
    const row = el('tr', {},
      el('td', { className: 'num', textContent: new Date(entry.time).toLocaleTimeString() }),
      el('td', { className: 'num s' + status.charAt(0), textContent: status }),
      el('td', { className: 'path', textContent: entry.method + ' ' + entry.path }),
      el('td', { className: 'num', textContent: entry.durationMs + ' ms' }),
      el('td', { className: 'num', textContent: bytes }),
      el('td', { className: 'muted', textContent: note }));
    row.dataset.seq = entry.seq;
    return row;
  }

  let running = null;
  function select(id) {
    selected = id;
    if (follow) { follow.close(); follow = null; }
    // A command still streaming belongs to the session it was run in: its output stops here.
    if (running) { running.abort(); running = null; }
    drawSessions();
    $('detail').hidden = id === null;
    if (id === null) return;
    $('detail-id').textContent = id;
    $('exec-output').textContent = '';
    const body = document.querySelector('table.log tbody');
    body.replaceChildren();
    $('log-state').textContent = 'connecting…';
    follow = new EventSource(api + '/sessions/' + encodeURIComponent(id) + '/previews/log?follow=1');
    follow.onopen = () => { $('log-state').textContent = 'live'; };
    follow.onerror = () => { $('log-state').textContent = 'reconnecting…'; };
    follow.onmessage = (event) => {
      body.prepend(logRow(JSON.parse(event.data)));
      while (body.children.length > 200) body.lastChild.remove();
    };
    follow.addEventListener('dropped', (event) => {
      $('log-state').textContent = 'live (' + JSON.parse(event.data).count + ' skipped)';
    });
  }

  $('create').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const ports = String(form.get('ports') || '').split(/[\\s,]+/).filter(Boolean).map(Number);
    const body = { image: String(form.get('image')).trim(), ports };
    const id = String(form.get('sessionId') || '').trim();
    if (id) body.sessionId = id;
    showError(null);
    try {
      const session = await (await call('POST', '/sessions', body)).json();
      event.target.reset();
      await refresh();
      select(session.sessionId);
    } catch (error) { showError(error); }
  });

  $('register').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const id = String(form.get('sessionId')).trim();
    showError(null);
    try {
      await call('POST', '/sessions/' + encodeURIComponent(id) + '/previews', { port: Number(form.get('port')) });
      event.target.reset();
      await refresh();
      select(id);
    } catch (error) { showError(error); }
  });

  $('exec').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (selected === null) return;
    const output = $('exec-output');
    const command = String(new FormData(event.target).get('command'));
    output.textContent = '$ ' + command + '\\n';
    if (running) running.abort();
    const controller = new AbortController();
    running = controller;
    try {
      const res = await call('POST', '/sessions/' + encodeURIComponent(selected) + '/exec', { cmd: ['sh', '-c', command] }, controller.signal);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let pending = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += value;
        let end;
        while ((end = pending.indexOf('\\n')) !== -1) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 1);
          if (!line) continue;
          const item = JSON.parse(line);
          if (item.type === 'stdout' || item.type === 'stderr') output.textContent += item.data;
          else if (item.type === 'exit') output.textContent += '[exit ' + item.exitCode + (item.timedOut ? ', timed out' : '') + ']\\n';
          else if (item.type === 'error') output.textContent += '[' + item.code + ': ' + item.message + ']\\n';
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) output.textContent += '[' + error.message + ']\\n';
    } finally {
      if (running === controller) running = null;
    }
  });

  refresh();
  polling = setInterval(() => { if (!document.hidden) refresh(); }, 2000);
})();
`;
