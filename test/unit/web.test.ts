// The web view's pure parts: the token, cookie, Host and Origin rules; static files only from the package (no
// traversal, plain or encoded, no hidden files, no symbolic links out); --listen; the WebSocket paths.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { hostAllowed, originAllowed, parseCookies, tokenCookie, tokenMatches } from '../../src/web/auth.js';
import { renderPage } from '../../src/web/page.js';
import { resolveStatic } from '../../src/web/static.js';
import { isLoopback, parseListen } from '../../src/web/server.js';
import { parseSocketPath } from '../../src/web/sockets.js';
import { UserError } from '../../src/errors.js';
import { ROOT } from './golden.js';

test('the token: in constant time, in an HttpOnly SameSite=Strict cookie', () => {
  assert.equal(tokenMatches('abc', 'abc'), true);
  assert.equal(tokenMatches('abc', 'abd'), false);
  assert.equal(tokenMatches('abc', 'ab'), false);
  assert.equal(tokenMatches('abc', undefined), false);
  assert.equal(tokenCookie('t0k'), 'qnet_token=t0k; HttpOnly; SameSite=Strict; Path=/');
  assert.equal(parseCookies('a=1; qnet_token=xyz ; b=2').get('qnet_token'), 'xyz');
});

test('Host and Origin: only this server, by the address it listens on (loopback also as localhost)', () => {
  const l = { host: '127.0.0.1', port: 8707 };
  assert.ok(hostAllowed('127.0.0.1:8707', l));
  assert.ok(hostAllowed('localhost:8707', l));
  assert.ok(!hostAllowed('evil.example:8707', l), 'DNS rebinding: a foreign name for our address');
  assert.ok(!hostAllowed('127.0.0.1:8708', l));
  assert.ok(!hostAllowed(undefined, l));
  assert.ok(hostAllowed('10.1.2.3:9000', { host: '10.1.2.3', port: 9000 }));
  assert.ok(!hostAllowed('localhost:9000', { host: '10.1.2.3', port: 9000 }));
  assert.ok(originAllowed('http://127.0.0.1:8707', '127.0.0.1:8707'));
  assert.ok(!originAllowed('http://evil.example', '127.0.0.1:8707'));
  assert.ok(!originAllowed('null', '127.0.0.1:8707'));
  assert.ok(!originAllowed(undefined, '127.0.0.1:8707'));
});

test('static files: the page and the two libraries, nothing else', async () => {
  assert.equal(await resolveStatic('/'), path.join(ROOT, 'web', 'index.html'));
  assert.equal(await resolveStatic('/static/app.js'), path.join(ROOT, 'web', 'app.js'));
  assert.ok((await resolveStatic('/vendor/xterm/lib/xterm.js'))?.endsWith('node_modules/@xterm/xterm/lib/xterm.js'));
  assert.ok((await resolveStatic('/vendor/novnc/core/rfb.js'))?.endsWith('node_modules/@novnc/novnc/core/rfb.js'));
  for (const bad of [
    '/static/../package.json',
    '/static/%2e%2e/package.json',
    '/static/%2E%2E%2Fpackage.json',
    '/static/..%2f..%2fetc/passwd',
    '/vendor/xterm/../../../../etc/passwd',
    '/static/%00app.js',
    '/static/.hidden',
    '/static/..\\package.json',
    '/etc/passwd',
    '/static/',
    '/static/nope.js',
    '/static/%zz',
    '/vendor/xterm/package.json.map',
  ])
    assert.equal(await resolveStatic(bad), null, bad);
  // A symbolic link inside a served folder that points outside is not followed.
  const dir = mkdtempSync(path.join(tmpdir(), 'qnet-e2e-web-'));
  const link = path.join(ROOT, 'web', 'zz-link-test.js');
  try {
    symlinkSync('/etc/hostname', link);
    assert.equal(await resolveStatic('/static/zz-link-test.js'), null);
  } finally {
    rmSync(link, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--listen: HOST:PORT, loopback told apart; bad ones are bad input', () => {
  assert.deepEqual(parseListen('127.0.0.1:8707'), { host: '127.0.0.1', port: 8707 });
  assert.deepEqual(parseListen('localhost:9'), { host: '127.0.0.1', port: 9 });
  assert.deepEqual(parseListen('8800'), { host: '127.0.0.1', port: 8800 });
  assert.deepEqual(parseListen('[::1]:8707'), { host: '::1', port: 8707 });
  assert.deepEqual(parseListen('0.0.0.0:8707'), { host: '0.0.0.0', port: 8707 });
  for (const bad of ['example.com:80', '127.0.0.1:99999', '1.2.3:80', '', 'a:b', '127.0.0.1:80; rm -rf /'])
    assert.throws(() => parseListen(bad), (e: unknown) => e instanceof UserError && /--listen/.test((e as Error).message), bad);
  assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && !isLoopback('0.0.0.0') && !isLoopback('192.168.1.5'));
});

test('WebSocket paths: a console or a screen of a node, names checked', () => {
  assert.deepEqual(parseSocketPath('/ws/console/seed/deb2'), { kind: 'console', lab: 'seed', node: 'deb2' });
  assert.deepEqual(parseSocketPath('/ws/vnc/seed/win'), { kind: 'vnc', lab: 'seed', node: 'win' });
  for (const bad of ['/ws/console/seed', '/ws/console/../deb2', '/ws/shell/seed/deb2', '/ws/console/Seed/deb2', '/ws/console/seed/deb2/x', '/ws/console/seed/%2e%2e']) assert.equal(parseSocketPath(bad), null, bad);
});

test('the page is sent with the labs in it: their list, the hint when there is none, the same list as inert JSON', () => {
  const template = readFileSync(path.join(ROOT, 'web', 'index.html'), 'utf8');
  const labs = [
    { lab: 'seed', status: 'up', nodes: 3, running: 3, source: '/x/seed.yaml' },
    { lab: 'b', status: 'degraded', nodes: 2, running: 1, source: '/tmp/</script><b>&"x\'.yaml' },
  ];
  const page = renderPage(template, labs);
  const list = /<ul id="lab-list">(.*?)<\/ul>/.exec(page)![1];
  assert.equal(list, '<li><a href="#lab=seed" data-lab="seed">seed (up, 3/3)</a></li><li><a href="#lab=b" data-lab="b">b (degraded, 1/2)</a></li>');
  assert.match(page, /<p class="hint" id="no-labs" hidden>/);
  const data = /<script type="application\/json" id="labs-data">(.*?)<\/script>\n<\/head>/.exec(page);
  assert.ok(data, 'a data block at the end of the head');
  assert.deepEqual(JSON.parse(data[1]!), labs);
  assert.doesNotMatch(data[1]!, /</, 'nothing in the JSON can close its element');
  // No lab: the list is empty and the hint shows; the template's own "loading…" never reaches the browser.
  const none = renderPage(template, []);
  assert.match(none, /<ul id="lab-list"><\/ul><p class="hint" id="no-labs">No lab is up/);
  assert.doesNotMatch(none, /loading…<\/li>/);
  assert.throws(() => renderPage('<html><head></head><body></body></html>', []), /web\/index\.html lacks the lab list/);
  // The page links its icon.
  assert.match(template, /<link rel="icon" type="image\/svg\+xml" href="\/favicon\.svg">/);
});
