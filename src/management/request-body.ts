/**
 * Reading a request's JSON body: its media type checked, its size capped while it streams (an
 * oversized body is cancelled, not drained), its bytes decoded as UTF-8 and parsed, each failure
 * answered with its own status (413, 415, 400).
 *
 * @module
 */
import { readLimited, type ReadLimitedErrors } from '../http/read-limited.js';
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
    const bytes = request.body ? await readLimited(request.body, maxBodyBytes, BODY_READ_ERRORS) : new Uint8Array(0);
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

const BODY_READ_ERRORS: ReadLimitedErrors = {
  tooLarge,
  // A request body fails mid-way only when the client goes away: answered as such, not reported as a server error.
  aborted: () => new HttpError(400, 'request_aborted', 'the request body ended before it was complete (the client disconnected)'),
};
