// The qnet web page: the labs, one lab's drawing kept current by server-sent events, its nodes' consoles (xterm.js)
// and screens (noVNC), and the same actions as the CLI (link, impair, capture, check) through the JSON API.
const $ = (s) => document.querySelector(s);
const state = { lab: null, status: null, events: null, digest: '', selected: null, consoles: new Map() };

async function api(path, body) {
  const r = await fetch(path, body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const type = r.headers.get('content-type') || '';
  const data = type.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new Error(data.error || `${r.status}`);
  return data;
}

function say(text, error = false) {
  const m = $('#message');
  m.textContent = text;
  m.className = error ? 'error' : '';
}

async function loadLabs() {
  return showLabs(await api('/api/labs'));
}

// The list of labs (the server writes the same entries into the page it sends: src/web/page.ts).
function showLabs(labs) {
  const ul = $('#lab-list');
  ul.replaceChildren(
    ...labs.map((l) => {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = `#lab=${encodeURIComponent(l.lab)}`;
      a.textContent = `${l.lab} (${l.status}, ${l.running}/${l.nodes})`;
      a.dataset.lab = l.lab;
      if (l.lab === state.lab) a.className = 'current';
      li.append(a);
      return li;
    }),
  );
  $('#no-labs').hidden = labs.length > 0;
  return labs;
}

// What the drawing shows of a running lab: when it changes, the drawing is fetched again.
function digestOf(s) {
  return JSON.stringify(s.nodes.map((n) => [n.name, n.state, n.nics.map((x) => [x.link, x.impair, x.dhcp ? x.addresses : []])]));
}

async function drawLab() {
  const svg = await api(`/api/labs/${encodeURIComponent(state.lab)}/graph.svg`);
  const box = $('#drawing');
  box.innerHTML = svg.replace(/^[\s\S]*?(<svg)/, '$1');
  for (const g of box.querySelectorAll('g.node')) {
    const title = g.querySelector('title')?.textContent || '';
    if (title.startsWith('node:')) {
      const name = title.slice(5);
      g.dataset.node = name;
      g.addEventListener('click', () => selectNode(name, true));
    }
  }
  paint();
}

// Node states on the drawing (a guest that died turns red at once, before the drawing is fetched again).
function paint() {
  if (!state.status) return;
  for (const n of state.status.nodes) {
    const g = document.querySelector(`#drawing g.node[data-node="${CSS.escape(n.name)}"]`);
    if (g) {
      g.dataset.state = n.state;
      g.classList.toggle('selected', n.name === state.selected);
    }
  }
  $('#lab-state').textContent = state.status.status;
  $('#lab-state').className = `badge ${state.status.status}`;
  if (state.selected) showNode(state.selected);
}

function openLab(lab) {
  if (state.events) state.events.close();
  state.lab = lab;
  state.status = null;
  state.digest = '';
  state.selected = null;
  $('#lab').hidden = false;
  $('#lab-title').textContent = lab;
  $('#node-panel').hidden = true;
  $('#check-out').hidden = true;
  const wait = document.createElement('p');
  wait.className = 'hint';
  wait.textContent = 'loading the drawing…';
  $('#drawing').replaceChildren(wait);
  for (const a of document.querySelectorAll('#lab-list a')) a.className = a.dataset.lab === lab ? 'current' : '';
  const es = new EventSource(`/api/labs/${encodeURIComponent(lab)}/events`);
  state.events = es;
  es.addEventListener('status', async (e) => {
    state.status = JSON.parse(e.data);
    const d = digestOf(state.status);
    if (d !== state.digest) {
      state.digest = d;
      await drawLab().catch((err) => say(err.message, true));
    } else paint();
  });
  es.addEventListener('gone', () => {
    say(`lab ${lab} is gone`);
    $('#lab-state').textContent = 'gone';
    void loadLabs();
  });
}

function nicRef(node, i) {
  return `${node}:${i}`;
}

function selectNode(name, open) {
  state.selected = name;
  paint();
  if (open) openConsole(name);
}

function showNode(name) {
  const n = state.status.nodes.find((x) => x.name === name);
  if (!n) return;
  $('#node-panel').hidden = false;
  $('#node-title').textContent = name;
  $('#node-state').textContent = `${n.state}${n.start ? ` (${n.start})` : ''}${n.kind === 'image' ? ' · image node' : ''}`;
  $('#open-vnc').hidden = !(n.image && n.image.vnc);
  const rows = n.nics.map((x, i) => {
    const tr = document.createElement('tr');
    tr.dataset.nic = String(i);
    const cells = [x.guestIf, x.network || 'user-mode', x.addresses.join(', ') || (x.dhcp ? 'DHCP (no lease yet)' : ''), '', x.impair || ''];
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.append(td);
    }
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link-toggle';
    b.textContent = x.link === 'down' ? 'plug in (up)' : 'pull (down)';
    b.dataset.state = x.link === 'down' ? 'up' : 'down';
    b.addEventListener('click', async () => {
      try {
        say((await api(`/api/labs/${encodeURIComponent(state.lab)}/link`, { nic: nicRef(name, i), state: b.dataset.state })).done);
      } catch (err) {
        say(err.message, true);
      }
    });
    tr.children[3].replaceChildren(document.createTextNode(`${x.link} `), b);
    return tr;
  });
  $('#nics tbody').replaceChildren(...rows);
  for (const sel of [$('#impair-form select[name=nic]'), $('#capture-form select[name=target]')]) {
    const keep = sel.value;
    sel.replaceChildren(
      ...n.nics.map((x, i) => {
        const o = document.createElement('option');
        o.value = nicRef(name, i);
        o.textContent = x.guestIf;
        return o;
      }),
    );
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  }
}

function openConsole(node) {
  const key = `console:${node}`;
  if (state.consoles.has(key)) return state.consoles.get(key).term.focus();
  const box = document.createElement('div');
  box.className = 'console';
  box.dataset.console = node;
  const h = document.createElement('h4');
  h.textContent = `${node} — serial console`;
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = 'close';
  h.append(close);
  const screen = document.createElement('div');
  box.append(h, screen);
  $('#consoles').append(box);
  const term = new window.Terminal({ rows: 20, cols: 90, scrollback: 5000, convertEol: false });
  term.open(screen);
  const ws = new WebSocket(`ws://${location.host}/ws/console/${encodeURIComponent(state.lab)}/${encodeURIComponent(node)}`);
  ws.onmessage = (e) => term.write(typeof e.data === 'string' ? e.data : '');
  ws.onopen = () => ws.send('\n');
  ws.onclose = (e) => term.write(`\r\n[console closed: ${e.reason || e.code}]\r\n`);
  term.onData((d) => ws.readyState === 1 && ws.send(d));
  const entry = { term, ws, box };
  state.consoles.set(key, entry);
  close.addEventListener('click', () => {
    ws.close();
    term.dispose();
    box.remove();
    state.consoles.delete(key);
  });
  term.focus();
}

async function openScreen(node) {
  const key = `vnc:${node}`;
  if (state.consoles.has(key)) return;
  const { default: RFB } = await import('/vendor/novnc/core/rfb.js');
  const box = document.createElement('div');
  box.className = 'console';
  box.dataset.screen = node;
  const h = document.createElement('h4');
  h.textContent = `${node} — screen`;
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = 'close';
  h.append(close);
  const screen = document.createElement('div');
  screen.className = 'screen';
  box.append(h, screen);
  $('#consoles').append(box);
  const rfb = new RFB(screen, `ws://${location.host}/ws/vnc/${encodeURIComponent(state.lab)}/${encodeURIComponent(node)}`);
  rfb.scaleViewport = true;
  rfb.addEventListener('connect', () => (box.dataset.connected = 'yes'));
  state.consoles.set(key, { rfb, box });
  close.addEventListener('click', () => {
    rfb.disconnect();
    box.remove();
    state.consoles.delete(key);
  });
}

$('#open-console').addEventListener('click', () => state.selected && openConsole(state.selected));
$('#open-vnc').addEventListener('click', () => state.selected && openScreen(state.selected).catch((e) => say(e.message, true)));
$('#run-check').addEventListener('click', async () => {
  const out = $('#check-out');
  out.hidden = false;
  out.textContent = 'checking: every pair predicted and measured…';
  try {
    const r = await api(`/api/labs/${encodeURIComponent(state.lab)}/check`, {});
    out.textContent = r.text;
    out.dataset.ok = String(r.ok);
  } catch (err) {
    out.textContent = err.message;
  }
});
$('#impair-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const impair = { direction: f.get('direction') };
  for (const k of ['delay', 'jitter', 'loss', 'rate']) if (f.get(k)) impair[k] = f.get(k);
  try {
    say((await api(`/api/labs/${encodeURIComponent(state.lab)}/impair`, { nic: f.get('nic'), impair })).done);
  } catch (err) {
    say(err.message, true);
  }
});
$('#impair-clear').addEventListener('click', async () => {
  try {
    say((await api(`/api/labs/${encodeURIComponent(state.lab)}/impair`, { nic: $('#impair-form select[name=nic]').value, clear: true })).done);
  } catch (err) {
    say(err.message, true);
  }
});
$('#capture-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const q = new URLSearchParams({ target: f.get('target') });
  if (f.get('count')) q.set('count', f.get('count'));
  if (f.get('seconds')) q.set('seconds', f.get('seconds'));
  const a = document.createElement('a');
  a.href = `/api/labs/${encodeURIComponent(state.lab)}/capture?${q}`;
  a.download = '';
  document.body.append(a);
  a.click();
  a.remove();
  say(`capturing ${f.get('target')}: the download ends after ${f.get('count') || '∞'} packets or ${f.get('seconds') || '∞'} s`);
});

function fromHash() {
  const m = /lab=([^&]+)/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}
window.addEventListener('hashchange', () => {
  const lab = fromHash();
  if (lab && lab !== state.lab) openLab(lab);
});
$('#where').textContent = location.host;
// The labs as the server wrote them into the page: the first lab opens at once, without a request of its own.
const given = document.getElementById('labs-data');
const labs = given ? showLabs(JSON.parse(given.textContent)) : await loadLabs();
const first = fromHash() || labs[0]?.lab;
if (first) openLab(first);
setInterval(() => void loadLabs().catch(() => {}), 5000);
