/**
 * A minimal JSON-over-HTTP request for probing servers (etcd's `/health` and its gRPC gateway).
 * It opens a fresh connection per request and closes it after, so no keep-alive socket outlives
 * a test (a pooled `fetch` connection would count as a leaked handle).
 *
 * @packageDocumentation
 */

import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** A response of {@link requestJson}. */
export interface HttpJsonResponse {
  /** The HTTP status code. */
  readonly status: number;
  /** The body parsed as JSON, or the raw text when it is not JSON. */
  readonly body: unknown;
}

/** Options of {@link requestJson}. */
export interface HttpJsonRequestOptions {
  /** Default `GET`, or `POST` when `body` is given. */
  method?: 'GET' | 'POST';
  /** Sent as JSON. */
  body?: unknown;
  /** The request fails once this many ms have passed without a complete response. */
  timeoutMs: number;
  /** Aborts the request. */
  signal?: AbortSignal;
  /** For https: the CA to trust and, for servers that require one, a client certificate (PEM). */
  tls?: HttpsClientTls;
}

/** The TLS material of an https {@link requestJson}. */
export interface HttpsClientTls {
  /** The CA certificate(s) that signed the server's certificate. */
  readonly ca: string | Buffer;
  /** A client certificate, for servers that require client authentication. */
  readonly cert?: string | Buffer;
  /** The client certificate's private key. */
  readonly key?: string | Buffer;
}

/**
 * Sends one request to `url` (http or https) and resolves with its status and body; rejects on
 * a connection error, after `timeoutMs`, or once `signal` aborts. Leaves no socket or timer.
 */
export function requestJson(
  url: string,
  options: HttpJsonRequestOptions,
): Promise<HttpJsonResponse> {
  const method = options.method ?? (options.body === undefined ? 'GET' : 'POST');
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise<HttpJsonResponse>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new Error(`${method} ${url} was aborted`));
      return;
    }
    const req = request(url, {
      method,
      agent: false,
      ...(options.tls === undefined
        ? {}
        : {
            ca: options.tls.ca,
            ...(options.tls.cert === undefined ? {} : { cert: options.tls.cert }),
            ...(options.tls.key === undefined ? {} : { key: options.tls.key }),
          }),
      headers:
        payload === undefined
          ? {}
          : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    });
    const onAbort = () => req.destroy(new Error(`${method} ${url} was aborted`));
    const timer = setTimeout(
      () => req.destroy(new Error(`${method} ${url} timed out after ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    const finish = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (error) => {
      finish();
      reject(error);
    });
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (error) => {
        finish();
        reject(error);
      });
      res.on('end', () => {
        finish();
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // Not JSON: keep the text, the caller decides.
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.end(payload);
  });
}
