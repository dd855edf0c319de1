// End-to-end: `qnet web` on a running seed lab, in a real browser (Debian's chromium, headless, driven by
// puppeteer-core): the drawing shows the three nodes and the bridge; deb2's console opens in the page and answers
// `hostname`; a pcap downloaded while it pings; an impairment set and cleared from the form (and shown on the
// drawing); check run from the page; deb3's QEMU killed turns deb3 dead on the drawing within seconds; deb1's LAN cable pulled from the
// page makes ping fail in deb2's console. Security: no token, 401; a foreign Origin's WebSocket, refused; a foreign
// Host, 421; path traversal, 404; a malformed impairment from the page, 400 and nothing changed; no CORS header. The
// first paint (the page's API requests held) already lists the labs; the icon is served; the page logs no error.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { WebSocket } from 'ws';
import { parse } from 'yaml';
import { QNET, ROOT, labName, qnet, snapshot, writeTopology, type HostSnapshot } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';

// A raw request (no URL normalisation, so "/../" reaches the server as written).
function raw(port: number, p: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method, headers: { Host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
    });
    req.once('error', reject);
    req.end(body);
  });
}

describe('qnet web on the seed lab', () => {
  const lab = labName('web');
  const screenLab = labName('webvnc');
  let before0: HostSnapshot;
  let web: ChildProcess;
  let port = 0;
  let token = '';
  let browser: Browser;
  let page: Page;
  const shots = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-shot-'));
  const cookie = () => `qnet_token=${token}`;

  before(async () => {
    before0 = await snapshot();
    const seed = parse(readFileSync(path.join(ROOT, 'examples', 'seed-lab.yaml'), 'utf8')) as Record<string, unknown>;
    const up = await qnet(['up', writeTopology({ ...seed, name: lab })]);
    assert.equal(up.code, 0, up.stderr);
    // A node with a screen: a blank disk (SeaBIOS finds nothing to boot and says so on the screen).
    const file = writeTopology({ name: screenLab, nodes: { pc: { image: 'blank.raw', memory: 128, config: 'none', ready: 'none', display: 'vnc' } } });
    writeFileSync(path.join(path.dirname(file), 'blank.raw'), Buffer.alloc(1 << 20));
    const up2 = await qnet(['up', file]);
    assert.equal(up2.code, 0, up2.stderr);
    web = spawn(process.execPath, [QNET, 'web', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    await new Promise<void>((resolve, reject) => {
      web.stderr!.on('data', (d) => {
        err += d;
        const m = /open http:\/\/127\.0\.0\.1:(\d+)\/\?token=([0-9a-f]+)/.exec(err);
        if (m) {
          port = Number(m[1]);
          token = m[2]!;
          resolve();
        }
      });
      web.once('exit', (c) => reject(new Error(`qnet web exited ${c}: ${err}`)));
    });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
  });
  after(async () => {
    await browser?.close();
    // Ctrl-C stops it promptly: nothing it opened (consoles, event streams, captures) keeps it alive.
    let stopped = false;
    if (web && web.exitCode === null) {
      web.kill('SIGINT');
      stopped = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 5000);
        web.once('exit', () => (clearTimeout(t), resolve(true)));
      });
      if (!stopped) web.kill('SIGKILL');
    }
    await qnet(['down', lab]);
    await qnet(['down', screenLab]);
    rmSync(shots, { recursive: true, force: true });
    assert.ok(stopped, 'qnet web exits within 5 s of SIGINT');
    assert.deepEqual(await snapshot(), before0);
  });

  test('security: the token, Host, Origin, static files, bad input', async () => {
    for (const p of ['/', '/api/labs', `/api/labs/${lab}`, '/static/app.js']) assert.equal((await raw(port, p)).status, 401, p);
    assert.equal((await raw(port, '/?token=0000')).status, 401, 'a wrong token');
    const login = await raw(port, `/?token=${token}`);
    assert.equal(login.status, 303);
    assert.equal(login.headers.location, '/');
    assert.match(String(login.headers['set-cookie']), /^qnet_token=[0-9a-f]+; HttpOnly; SameSite=Strict; Path=\/$/);
    const labs = await raw(port, '/api/labs', { Cookie: cookie() });
    assert.equal(labs.status, 200);
    assert.ok((JSON.parse(labs.body) as Array<{ lab: string }>).some((l) => l.lab === lab));
    assert.equal(labs.headers['access-control-allow-origin'], undefined, 'no CORS');
    assert.equal((await raw(port, '/api/labs', { Cookie: cookie(), Host: `evil.example:${port}` })).status, 421, 'DNS rebinding');
    for (const p of ['/static/../package.json', '/static/%2e%2e/package.json', '/static/..%2f..%2fetc%2fpasswd', '/vendor/xterm/../../../package.json', '/../../etc/passwd', '/static/%2e%2e%5cpackage.json'])
      assert.equal((await raw(port, p, { Cookie: cookie() })).status, 404, p);
    // A malformed impairment is bad input, as on the command line, and nothing changes.
    const bad = await raw(port, `/api/labs/${lab}/impair`, { Cookie: cookie(), 'Content-Type': 'application/json', Origin: `http://127.0.0.1:${port}` }, 'POST', JSON.stringify({ nic: 'deb3', impair: { delay: 'fast' } }));
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).error, /impair\.delay: delay is a time like 20ms, 500us or 1s/);
    assert.equal((await raw(port, `/api/labs/${lab}/impair`, { Cookie: cookie(), 'Content-Type': 'text/plain' }, 'POST', '{}')).status, 415, 'no form can post');
    assert.equal((await raw(port, `/api/labs/${lab}/link`, { Cookie: cookie(), 'Content-Type': 'application/json', Origin: 'http://evil.example' }, 'POST', '{"nic":"deb3","state":"down"}')).status, 403);
    const st = await qnet(['status', lab, '--json']);
    assert.doesNotMatch(st.stdout, /"impair"|"link": "down"/, 'nothing was changed');
    // WebSockets: the Origin must be this server's; the token is needed.
    const wsStatus = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/console/${lab}/deb2`, { headers });
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => {
          ws.close();
          resolve(101);
        });
        ws.once('error', () => {});
      });
    assert.equal(await wsStatus({ Cookie: cookie(), Origin: 'http://evil.example' }), 403, 'cross-site WebSocket hijacking refused');
    assert.equal(await wsStatus({ Origin: `http://127.0.0.1:${port}` }), 401);
    assert.equal(await wsStatus({ Cookie: cookie(), Origin: `http://127.0.0.1:${port}` }), 101);
  });

  test('in the browser: the first paint lists the labs before any request is answered; an icon; no console error', async () => {
    const p = await browser.newPage();
    await p.setViewport({ width: 1400, height: 1000 });
    const errors: string[] = [];
    p.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
    p.on('pageerror', (e) => errors.push(`page: ${(e as Error).message}`));
    p.on('response', (r) => r.status() >= 400 && errors.push(`${r.status()} ${r.url()}`));
    // The page's own requests (the lab list, the lab's events and drawing) are held until the first paint is read.
    const held: Array<{ continue(): Promise<void> }> = [];
    let hold = true;
    await p.setRequestInterception(true);
    p.on('request', (r) => void (hold && new URL(r.url()).pathname.startsWith('/api/') ? held.push(r) : r.continue()));
    try {
      await p.goto(`http://127.0.0.1:${port}/?token=${token}#lab=${lab}`, { waitUntil: 'domcontentloaded' });
      const first = await p.evaluate(() => ({
        labs: [...document.querySelectorAll('#lab-list a')].map((a) => a.textContent),
        title: document.querySelector('#lab-title')?.textContent,
        shown: !(document.querySelector('#lab') as HTMLElement).hidden,
        drawing: document.querySelector('#drawing')?.textContent,
      }));
      await p.screenshot({ path: path.join(shots, 'first-paint.png') });
      assert.ok(held.length > 0, 'the page asked the API for something, and it was held');
      assert.ok(first.labs.includes(`${lab} (up, 3/3)`) && first.labs.includes(`${screenLab} (up, 1/1)`), `the first paint lists the labs: ${JSON.stringify(first)}`);
      assert.deepEqual({ title: first.title, shown: first.shown, drawing: first.drawing }, { title: lab, shown: true, drawing: 'loading the drawing…' });
      hold = false;
      for (const r of held.splice(0)) await r.continue();
      await p.waitForSelector('#drawing svg g.node[data-node="deb3"][data-state="running"]', { timeout: 20_000 });
      // The icon: linked from the page, and at /favicon.ico where browsers look by default (also without the token).
      const icon = await p.evaluate(async () => {
        const href = document.querySelector('link[rel="icon"]')?.getAttribute('href') ?? '';
        const [a, b] = await Promise.all([fetch(href), fetch('/favicon.ico')]);
        return { href, linked: [a.status, a.headers.get('content-type')], ico: [b.status, b.headers.get('content-type')], svg: (await b.text()).slice(0, 4) };
      });
      assert.deepEqual(icon, { href: '/favicon.svg', linked: [200, 'image/svg+xml'], ico: [200, 'image/svg+xml'], svg: '<svg' });
      assert.equal((await raw(port, '/favicon.ico')).status, 200, 'the icon needs no token');
      assert.deepEqual(errors, [], 'no console error, no failed request');
    } finally {
      hold = false;
      for (const r of held.splice(0)) await r.continue().catch(() => {});
      await p.close();
    }
  });

  test('in the browser: the drawing, a console, a guest dying, a cable pulled', async () => {
    await page.goto(`http://127.0.0.1:${port}/?token=${token}#lab=${lab}`);
    assert.equal(new URL(page.url()).search, '', 'the token left the address bar');
    await page.waitForSelector('#drawing svg g.node[data-node="deb3"][data-state="running"]', { timeout: 20_000 });
    const titles = await page.$$eval('#drawing svg g.node title', (ts) => ts.map((t) => t.textContent));
    for (const t of ['node:deb1', 'node:deb2', 'node:deb3', 'net:lan']) assert.ok(titles.includes(t), `${t} in ${titles.join(', ')}`);
    assert.match(await page.$eval('#drawing svg', (s) => s.textContent ?? ''), /kbr0/);

    // deb2's console: click its node, type hostname, read it back.
    await page.click('#drawing g.node[data-node="deb2"]');
    await page.waitForSelector('.console[data-console="deb2"] .xterm-rows');
    const rows = (node: string) => page.$$eval(`.console[data-console="${node}"] .xterm-rows > div`, (ds) => ds.map((d) => (d.textContent ?? '').trim()));
    const until = async (what: () => Promise<boolean>, ms: number, why: string) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        if (await what()) return;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.fail(why);
    };
    await page.focus('.console[data-console="deb2"] textarea');
    await page.keyboard.type('hostname\n');
    // busybox's line editor asks the terminal where its cursor is (ESC[6n) at each prompt; xterm.js answers, and an
    // answer that arrives while the shell is not reading is echoed by the tty as "^[[3;9R" before the next output
    // (seen once in 979: "^[[3;9Rdeb2"). The hostname is what is asked for, with or without that echo before it.
    const answered = (r: string[]) => r.some((l) => l.replace(/^(\^\[\[\d+;\d+R)+/, '') === 'deb2');
    await until(async () => answered(await rows('deb2')), 15_000, `deb2 answered hostname: ${(await rows('deb2')).join(' | ')}`);

    // A capture from the page while deb2 pings deb1: a pcap of 4 packets.
    const pcap = page.evaluate(async (l: string) => {
      const res = await fetch(`/api/labs/${l}/capture?target=deb2&count=4&seconds=20`);
      const b = new Uint8Array(await res.arrayBuffer());
      return { status: res.status, type: res.headers.get('content-type'), size: b.length, magic: [...b.subarray(0, 4)] };
    }, lab);
    await new Promise((r) => setTimeout(r, 1500));
    await page.keyboard.type('ping -c 4 192.168.1.254\n');
    const got = await pcap;
    assert.equal(got.status, 200);
    assert.equal(got.type, 'application/vnd.tcpdump.pcap');
    assert.deepEqual(got.magic, [0xd4, 0xc3, 0xb2, 0xa1], 'a pcap file (little-endian magic)');
    assert.ok(got.size > 24 + 4 * 16, `4 packets in ${got.size} bytes`);

    // An impairment set and cleared from the page's form: the drawing says so on deb2's edge.
    await page.click('#drawing g.node[data-node="deb2"]');
    await page.waitForSelector('#impair-form select[name=nic] option[value="deb2:0"]');
    await page.type('#impair-form input[name=rate]', '1mbit');
    await page.click('#impair-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#message')?.textContent === 'deb2 eth0: rate 1mbit, egress', { timeout: 10_000 });
    await page.waitForFunction(() => /impaired: rate 1mbit, egress/.test(document.querySelector('#drawing svg')?.textContent ?? ''), { timeout: 10_000 });
    await page.click('#impair-clear');
    await page.waitForFunction(() => document.querySelector('#message')?.textContent === 'deb2 eth0: no impairment', { timeout: 10_000 });
    await page.waitForFunction(() => !/impaired:/.test(document.querySelector('#drawing svg')?.textContent ?? ''), { timeout: 10_000 });

    // check from the page: its matrix, agreeing everywhere.
    await page.click('#run-check');
    await page.waitForFunction(() => /prediction and measurement agree everywhere/.test(document.querySelector('#check-out')?.textContent ?? ''), { timeout: 60_000 });
    assert.match(await page.$eval('#check-out', (e) => e.textContent ?? ''), /^deb2 +✓✓ +-- +✓✓ +✓✓ +✗✓$/m);

    // deb3's QEMU killed: the drawing turns it dead.
    const st = JSON.parse((await qnet(['status', lab, '--json'])).stdout) as { nodes: Array<{ name: string; pid: number }> } | Array<{ nodes: Array<{ name: string; pid: number }> }>;
    const nodes = Array.isArray(st) ? st[0]!.nodes : st.nodes;
    const pid = nodes.find((n) => n.name === 'deb3')!.pid;
    const t = Date.now();
    process.kill(pid, 'SIGKILL');
    await page.waitForSelector('#drawing g.node[data-node="deb3"][data-state="dead"]', { timeout: 10_000 });
    const dead = Date.now() - t;
    assert.ok(dead < 10_000, `deb3 shown dead after ${dead} ms`);

    // deb1's LAN cable pulled from the page: deb2 can no longer ping it.
    await page.click('#drawing g.node[data-node="deb1"]');
    await page.waitForSelector('.console[data-console="deb1"]');
    await page.waitForSelector('#nics tr[data-nic="1"] button.link-toggle[data-state="down"]');
    await page.click('#nics tr[data-nic="1"] button.link-toggle');
    await page.waitForFunction(() => document.querySelector('#message')?.textContent === 'deb1 eth1: link down', { timeout: 10_000 });
    await page.waitForSelector('#nics tr[data-nic="1"] button.link-toggle[data-state="up"]', { timeout: 10_000 });
    await page.focus('.console[data-console="deb2"] textarea');
    await page.keyboard.type('ping -c 2 -W 1 192.168.1.254\n');
    await until(async () => (await rows('deb2')).some((r) => /2 packets transmitted, 0 packets received, 100% packet loss/.test(r)), 20_000, `ping failed in deb2's console: ${(await rows('deb2')).slice(-6).join(' | ')}`);
    const shot = path.join(shots, 'web.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot) && readFileSync(shot).subarray(1, 4).toString() === 'PNG');
    // The page's own request with a malformed impairment: 400 with the message, nothing changed.
    const r = await page.evaluate(async (l: string) => {
      const res = await fetch(`/api/labs/${l}/impair`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ nic: 'deb2', impair: { loss: '150%' } }) });
      return { status: res.status, body: await res.json() };
    }, lab);
    assert.equal(r.status, 400);
    assert.match(r.body.error, /impair\.loss: loss is at most 100%/);
  });

  test('in the browser: an image node\'s screen over VNC (noVNC)', async () => {
    await page.goto(`http://127.0.0.1:${port}/#lab=${screenLab}`);
    await page.waitForSelector('#drawing svg g.node[data-node="pc"][data-state="running"]', { timeout: 20_000 });
    await page.click('#drawing g.node[data-node="pc"]');
    await page.waitForSelector('#open-vnc:not([hidden])');
    await page.click('#open-vnc');
    await page.waitForSelector('.console[data-screen="pc"][data-connected="yes"] canvas', { timeout: 20_000 });
    const size = await page.$eval('.console[data-screen="pc"] canvas', (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]);
    assert.ok(size[0]! >= 320 && size[1]! >= 200, `the guest's screen is drawn (${size.join('×')})`);
  });
});
