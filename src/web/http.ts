// Small HTTP helpers of the web view: JSON answers, errors with a status, request bodies read with a bound.
import type http from 'node:http';
import { UserError } from '../errors.js';

/** An error that is answered with its HTTP status and message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Sends a JSON answer. */
export function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** Reads a JSON object body of at most 64 KiB; bad JSON is bad input (400). */
export async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 65536) throw new HttpError(413, 'request body too large (at most 64 KiB)');
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8') || '{}';
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new UserError('the request body is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UserError('the request body is a JSON object');
  return v as Record<string, unknown>;
}
