/**
 * Reading a request's JSON body: its media type checked, its size capped while it streams (an
 * oversized body is cancelled, not drained), its bytes decoded as UTF-8 and parsed, each failure
 * answered with its own status (413, 415, 400).
 *
 * @module
 */
import { HttpError } from './http-errors.js';

/** Reads the JSON body of `request`; `undefined` when an optional body is absent. */
export type BodyReader = (request: Request, required: boolean) => Promise<unknown>;

/** A {@link BodyReader} refusing bodies over `maxBodyBytes` with 413. */
export function bodyReader(maxBodyBytes: number): BodyReader {
  return async function readBody(request, required) {
    const type = request.headers.get('content-type');
    const jsonType = type !== null && isJsonMediaType(type);
    if (type !== null && !jsonType) {
      throw new HttpError(415, 'unsupported_media_type', `send the body as application/json, not ${type.split(';')[0]?.trim() || type}`);
    }
    if (required && !jsonType) throw new HttpError(415, 'unsupported_media_type', 'send a JSON body with Content-Type: application/json');
    const declared = Number(request.headers.get('content-length') ?? NaN);
    if (declared > maxBodyBytes) throw tooLarge(maxBodyBytes);
    const bytes = request.body ? await readLimited(request.body, maxBodyBytes) : new Uint8Array(0);
    if (bytes.byteLength === 0) {
      if (required) throw new HttpError(400, 'malformed_json', 'the request body is empty; expected a JSON object');
      return undefined;
    }
    if (!jsonType) throw new HttpError(415, 'unsupported_media_type', 'send the body with Content-Type: application/json');
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new HttpError(400, 'malformed_json', 'the request body is not valid UTF-8');
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new HttpError(400, 'malformed_json', `the request body is not valid JSON: ${(error as Error).message}`);
    }
  };
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'payload_too_large', `the request body is larger than ${limit} bytes`);
}

/** `application/json` or any `+json` type, with or without parameters. */
function isJsonMediaType(type: string): boolean {
  const essence = type.split(';')[0]?.trim().toLowerCase() ?? '';
  return essence === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(essence);
}

/** Reads a body stream up to `limit` bytes; beyond that, stops reading and answers 413. */
async function readLimited(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch {
      // A request body fails mid-way only when the client (or its connection) goes away: its
      // doing, answered as such and not reported as a server error.
      throw new HttpError(400, 'request_aborted', 'the request body ended before it was complete (the client disconnected)');
    }
    const { done, value } = chunk;
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      // Cancel rather than drain: an oversized body is not worth receiving.
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
