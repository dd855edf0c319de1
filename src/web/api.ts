// The web view's JSON API: each route validates its input as strictly as the CLI (exit-2 rules become 400 with
// the same message) and calls the same library function the CLI command does.
import type http from 'node:http';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { NAME_PATTERN } from '../topology/names.js';
import { ImpairSchema } from '../topology/schema.js';
import { UserError } from '../errors.js';
import { HttpError, readJson, send } from './http.js';

const Lab = z.string().regex(NAME_PATTERN, { error: 'a lab name uses lower-case letters, digits and inner hyphens' }).max(24);
const NicRef = z.string().min(1).max(80).regex(/^[a-z0-9-]+(:[A-Za-z0-9]+)?$/, { error: 'a NIC is NODE or NODE:NIC (eth1, or a position)' });
const LinkBody = z.strictObject({ nic: NicRef, state: z.enum(['up', 'down']) });
const ImpairBody = z.union([z.strictObject({ nic: NicRef, impair: ImpairSchema }), z.strictObject({ nic: NicRef, clear: z.literal(true) })]);
const CheckBody = z.strictObject({ only: z.enum(['ping', 'tcp']).optional() });
const CaptureQuery = z
  .strictObject({
    target: z.string().min(1).max(80).regex(/^[a-z0-9-]+(:[A-Za-z0-9]+)?$/, { error: 'capture a NODE, NODE:NIC or NETWORK' }),
    count: z.coerce.number().int().min(1).max(100000).optional(),
    seconds: z.coerce.number().int().min(1).max(600).optional(),
    network: z.enum(['1', 'true']).optional(),
  })
  .refine((q) => q.count !== undefined || q.seconds !== undefined, { error: 'say how much: count (packets) or seconds' });

// zod's first issue, as the CLI words it ("impair.delay: delay is a time like 20ms, 500us or 1s").
function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new UserError(r.error.issues.map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`).join('; '));
  return r.data;
}

/** Answers /api/… requests. */
export async function handleApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
  const parts = url.pathname.split('/').slice(2); // ['labs', lab?, what?]
  const method = req.method ?? 'GET';
  if (parts[0] !== 'labs' || parts.length > 3) throw new HttpError(404, 'no such API');
  if (parts.length === 1) {
    if (method !== 'GET') throw new HttpError(405, 'method not allowed');
    const { labSummaries } = await import('./page.js');
    return send(res, 200, await labSummaries());
  }
  const lab = parse(Lab, decodeURIComponent(parts[1]!));
  const what = parts[2] ?? '';
  const route = `${method} ${what}`;
  switch (route) {
    case 'GET ': {
      const { labStatus } = await import('../lab/status.js');
      const s = await labStatus(lab);
      if (!s) throw new HttpError(404, `no lab named "${lab}"`);
      return send(res, 200, s);
    }
    case 'GET graph.svg': {
      const { upState } = await import('../lab/state.js');
      const { labStatus } = await import('../lab/status.js');
      const { drawLab, liveOf } = await import('../lab/graph.js');
      const state = await upState(lab);
      const s = await labStatus(lab);
      const svg = await drawLab(state.lab, 'svg', s ? liveOf(s) : undefined);
      res.writeHead(200, { 'Content-Type': 'image/svg+xml; charset=utf-8', 'Cache-Control': 'no-store' });
      return void res.end(svg);
    }
    case 'GET events':
      return events(req, res, lab);
    case 'POST link': {
      const body = parse(LinkBody, await readJson(req));
      const { setLink } = await import('../lab/link.js');
      return send(res, 200, { done: await setLink(lab, body.nic, body.state === 'up') });
    }
    case 'POST impair': {
      const body = parse(ImpairBody, await readJson(req));
      const { setImpairment } = await import('../lab/impair.js');
      return send(res, 200, { done: await setImpairment(lab, body.nic, 'clear' in body ? 'clear' : body.impair) });
    }
    case 'POST check': {
      const body = parse(CheckBody, await readJson(req));
      const { checkLab } = await import('../lab/check.js');
      const m = await import('../check/matrix.js');
      const probes = body.only ? [body.only] : (['ping', 'tcp'] as const);
      const r = await checkLab(lab, body.only ? { only: body.only } : {});
      const dis = m.disagreements(r.prediction, r.measured, probes);
      const text = [
        m.renderMatrix(r.prediction, probes, r.measured),
        m.renderReasons(r.prediction, probes),
        m.renderDisagreements(dis),
        ...r.declared.map((d) => `${d.ok ? 'pass' : 'FAIL'}  ${d.label}`),
      ].join('\n');
      return send(res, 200, { text, ok: dis.length === 0 && r.declared.every((d) => d.ok), ms: r.ms, ...(m.matrixJson(r.prediction, probes, r.measured) as object), declared: r.declared });
    }
    case 'GET capture':
      return capturePcap(req, res, lab, url);
    default:
      throw new HttpError(404, 'no such API');
  }
}

// Server-sent events: the lab's status whenever it changes (checked every second), so the page redraws without
// reloading. A status is small; the page fetches the drawing again only when what it shows has changed.
async function events(req: http.IncomingMessage, res: http.ServerResponse, lab: string): Promise<void> {
  const { labStatus } = await import('../lab/status.js');
  if (!(await labStatus(lab))) throw new HttpError(404, `no lab named "${lab}"`);
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
  let last = '';
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const s = await labStatus(lab);
      const text = JSON.stringify(s);
      if (text !== last) {
        last = text;
        res.write(`event: ${s ? 'status' : 'gone'}\ndata: ${text}\n\n`);
      }
    } finally {
      busy = false;
    }
  };
  await tick();
  const timer = setInterval(() => void tick(), 1000);
  const ping = setInterval(() => res.write(': keep-alive\n\n'), 15000);
  // The response's close is the connection's (the browser gone, or the server closing every connection).
  res.once('close', () => {
    clearInterval(timer);
    clearInterval(ping);
  });
}

// A pcap of a NIC or network for N packets or N seconds (whichever comes first), as a download.
async function capturePcap(req: http.IncomingMessage, res: http.ServerResponse, lab: string, url: URL): Promise<void> {
  const q = parse(CaptureQuery, Object.fromEntries(url.searchParams));
  const { upState } = await import('../lab/state.js');
  const { capture, captureSource } = await import('../lab/capture.js');
  const state = await upState(lab);
  captureSource(state.lab, q.target, !!q.network); // bad targets are refused before anything is sent
  const stop = new AbortController();
  const timer = q.seconds !== undefined ? setTimeout(() => stop.abort(), q.seconds * 1000) : undefined;
  res.once('close', () => stop.abort());
  res.writeHead(200, {
    'Content-Type': 'application/vnd.tcpdump.pcap',
    'Content-Disposition': `attachment; filename="${lab}-${q.target.replace(':', '-')}.pcap"`,
    'Cache-Control': 'no-store',
  });
  // tcpdump's own lines are not part of the download.
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  try {
    await capture(lab, q.target, { write: '-', ...(q.count !== undefined ? { count: q.count } : {}), network: !!q.network, stdout: res, stderr: sink, signal: stop.signal });
  } finally {
    if (timer) clearTimeout(timer);
    res.end();
  }
}
