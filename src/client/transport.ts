// HTTP for the client: one undici Agent (keep-alive pools per origin, TLS options), JSON in
// and out, and failures classified by whether the request may have reached the node.
import { Agent, request } from 'undici';
import type { Auth, ClientConfig } from './types.js';

/** An answer: HTTP status and the parsed JSON body. */
export interface HttpAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** No answer came. `sent`: the node may have received (and acted on) the request. */
export class TransportError extends Error {
  constructor(
    message: string,
    readonly sent: boolean,
    readonly errCode: string,
    readonly badResponse = false,
  ) {
    super(message);
  }
}

// Errors raised before any request byte left: the node certainly did not act on it.
const NOT_SENT = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const TLS_REFUSED = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|DEPTH_ZERO/;

/** The client's HTTP side. */
export class Transport {
  private readonly agent: Agent;
  private readonly authHeader: string | undefined;

  constructor(cfg: Pick<ClientConfig, 'tls' | 'auth'>) {
    const tls = cfg.tls ?? {};
    this.agent = new Agent({
      keepAliveTimeout: 10_000,
      connectTimeout: 2_000,
      connect: { ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}) },
    });
    this.authHeader = authorization(cfg.auth);
  }

  /** Sends one request; resolves with any HTTP answer, rejects only with TransportError. */
  async send(base: string, method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    let res;
    try {
      res = await request(base + path, {
        dispatcher: this.agent,
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.authHeader ? { authorization: this.authHeader } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        // The signal bounds the call; undici's own 300 s defaults must not outlive it.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
    } catch (e) {
      throw classify(e, `${method} ${base}${path}`);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (e) {
      throw classify(e, `${method} ${base}${path} (reading the answer)`, true);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new TransportError(`${base} answered ${res.statusCode} with a body that is not JSON: ${text.slice(0, 120)}`, true, 'BAD_RESPONSE', true);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new TransportError(`${base} answered ${res.statusCode} with JSON that is not an object`, true, 'BAD_RESPONSE', true);
    }
    return { status: res.statusCode, body: parsed as Record<string, unknown> };
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    await this.agent.close();
  }
}

function classify(e: unknown, what: string, forceSent = false): TransportError {
  const err = e as { code?: string; name?: string; message?: string; cause?: { code?: string } };
  const code = err.code ?? err.cause?.code ?? err.name ?? 'ERROR';
  const sent = forceSent || !(NOT_SENT.has(code) || TLS_REFUSED.test(code));
  return new TransportError(`${what}: ${err.message ?? String(e)} (${code})`, sent, code);
}

function authorization(auth: Auth | undefined): string | undefined {
  if (!auth) return undefined;
  if ('token' in auth) return `Bearer ${auth.token}`;
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}
