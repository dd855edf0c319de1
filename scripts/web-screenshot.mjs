#!/usr/bin/env node
// Makes docs/web.png, the README's picture of `qnet web`: the seed lab up, deb2's console, deb3 killed, deb1's LAN
// cable pulled from the page, then a ping that fails. Run as root after `npm run setup` (needs Debian's chromium).
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const qnet = (...a) => spawnSync(process.execPath, [path.join(root, 'bin', 'qnet.js'), ...a], { encoding: 'utf8' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
if (qnet('up', path.join(root, 'examples', 'seed-lab.yaml')).status !== 0) throw new Error('qnet up failed');
const web = spawn(process.execPath, [path.join(root, 'bin', 'qnet.js'), 'web', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
let browser;
try {
  const url = await new Promise((resolve) => {
    let err = '';
    web.stderr.on('data', (d) => {
      err += d;
      const m = /open (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
  });
  browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const page = await browser.newPage();
  await page.setViewport({ width: 1500, height: 980 });
  await page.goto(`${url}#lab=seed`);
  await page.waitForSelector('#drawing g.node[data-node="deb3"][data-state="running"]');
  await page.click('#drawing g.node[data-node="deb2"]');
  await page.waitForSelector('.console[data-console="deb2"] textarea');
  await sleep(1000);
  await page.focus('.console[data-console="deb2"] textarea');
  await page.keyboard.type('hostname\n');
  const st = JSON.parse(qnet('status', 'seed', '--json').stdout);
  process.kill((Array.isArray(st) ? st[0] : st).nodes.find((n) => n.name === 'deb3').pid, 'SIGKILL');
  await page.waitForSelector('#drawing g.node[data-node="deb3"][data-state="stopped"]');
  await page.click('#drawing g.node[data-node="deb1"]');
  await page.waitForSelector('#nics tr[data-nic="1"] button.link-toggle[data-state="down"]');
  await page.click('#nics tr[data-nic="1"] button.link-toggle');
  await page.waitForSelector('#nics tr[data-nic="1"] button.link-toggle[data-state="up"]');
  await page.waitForFunction(() => /LINK DOWN/.test(document.querySelector('#drawing svg')?.textContent ?? ''));
  await page.focus('.console[data-console="deb2"] textarea');
  await page.keyboard.type('ping -c 2 -W 1 192.168.1.254\n');
  await sleep(4000);
  await page.screenshot({ path: path.join(root, 'docs', 'web.png'), fullPage: true });
  console.log('wrote docs/web.png');
} finally {
  await browser?.close();
  web.kill('SIGINT');
  qnet('down', 'seed');
}
