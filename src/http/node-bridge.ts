/**
 * Node's `http` request and response bridged to the Fetch API, for the handlers that are Fetch
 * functions (the management API, the admin page) when a host mounts them on Express or node:http.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** What Express-style frameworks add to Node's request. */
export type FrameworkRequest = IncomingMessage & { originalUrl?: string; protocol?: string; body?: unknown };

/** The request's absolute URL (a malformed Host falls back to localhost). */
export function urlOf(req: FrameworkRequest): string {
  const protocol = req.protocol ?? ((req.socket as { encrypted?: boolean } | undefined)?.encrypted ? 'https' : 'http');
  const path = req.originalUrl ?? req.url ?? '/';
  const host = req.headers.host;
  // The host is not used for routing; a missing or malformed one must not break the request.
  for (const base of host ? [`${protocol}://${host}`, 'http://localhost'] : ['http://localhost']) {
    try {
      return new URL(path.startsWith('/') ? path : `/${path}`, base).href;
    } catch {
      // try the next base
    }
  }
  return 'http://localhost/';
}

/** The request's headers as Fetch `Headers` (repeated ones kept apart; HTTP/2 pseudo-headers left out). */
export function headersOf(req: IncomingMessage): Headers {
  const headers = new Headers();
  // rawHeaders keeps repeated headers (e.g. two Cookie lines) apart; pairs of name, value.
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] ?? '';
    // HTTP/2 pseudo-headers (:path, :method) are not valid Fetch header names.
    if (name.startsWith(':')) continue;
    try {
      headers.append(name, req.rawHeaders[i + 1] ?? '');
    } catch {
      // A header Fetch refuses is one the API does not read.
    }
  }
  return headers;
}

/** A request body as a Fetch stream, read only when the handler reads it. */
export interface BodySource {
  stream: ReadableStream<Uint8Array>;
  /** Stop reading and throw away the rest of the request body. */
  discard(): void;
  /** Detach from the request, leaving its unread body for the next middleware. */
  release(): void;
}

/**
 * The body of a request nobody has read yet, as a pull-based stream: nothing is read from the
 * socket until the handler reads, so a request it refuses early keeps its body untouched (Node
 * discards it once the answer is sent and the keep-alive connection stays usable); a body the
 * handler stops reading is drained and discarded.
 */
export function lazyRequestBody(req: IncomingMessage): BodySource {
  // Pull-based with highWaterMark 0: nothing is read from the socket until the handler reads, so
  // a request the handler refuses early (or does not route) keeps its body untouched.
  let attached = false;
  let finished = false;
  let controllerRef: ReadableStreamDefaultController<Uint8Array> | null = null;
  const onData = (chunk: Buffer) => {
    if (finished || !controllerRef) return;
    controllerRef.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((controllerRef.desiredSize ?? 0) <= 0) req.pause();
  };
  const onEnd = () => {
    if (finished) return;
    finished = true;
    detach();
    controllerRef?.close();
  };
  const onError = (error: Error) => {
    if (finished) return;
    finished = true;
    detach();
    controllerRef?.error(error);
  };
  const onClose = () => {
    // The handler answers this as 400 request_aborted, a client event rather than a server error.
    if (!req.readableEnded) onError(new Error('the client closed the connection before sending the whole body'));
  };
  const detach = () => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    req.off('close', onClose);
  };
  const discard = () => {
    if (!attached) {
      // Never read: let Node dump it (it does for unconsumed bodies once the answer is sent).
      if (!req.readableEnded) req.resume();
      return;
    }
    finished = true;
    detach();
    if (!req.readableEnded) req.resume();
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controllerRef = controller;
      },
      pull() {
        if (!attached) {
          attached = true;
          req.on('data', onData);
          req.on('end', onEnd);
          req.on('error', onError);
          req.on('close', onClose);
          // The client may have gone before the handler started reading: 'close' has fired already.
          if (req.destroyed && !req.readableEnded) {
            onClose();
            return;
          }
        }
        req.resume();
      },
      cancel() {
        discard();
      },
    },
    { highWaterMark: 0 },
  );
  return {
    stream,
    discard,
    release: () => {
      if (attached) discard();
    },
  };
}

/** Writes a Fetch `Response` to Node's response (nothing when the client is gone). */
export async function writeResponse(response: Response, res: ServerResponse, req: IncomingMessage): Promise<void> {
  const bytes = response.body ? Buffer.from(await response.arrayBuffer()) : null;
  // The client is gone (it disconnected mid-body): nobody to answer.
  if (res.destroyed || req.socket?.destroyed) return;
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = response.status;
  const cookies = response.headers.getSetCookie();
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') res.setHeader(name, value);
  });
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  if (bytes) res.setHeader('content-length', String(bytes.byteLength));
  res.end(bytes ?? undefined);
}
