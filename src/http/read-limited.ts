/**
 * Reading a request body up to a size limit, for the Fetch handlers (the management API's JSON,
 * the admin page's forms): each answers the two ways a read can fail in its own words.
 *
 * @module
 */

/** What to throw when the body is over the limit, or breaks off before its end. */
export interface ReadLimitedErrors {
  /** The body is longer than the limit: reading stops (the rest is not worth receiving). */
  tooLarge(limit: number): Error;
  /** The stream failed mid-way: the client (or its connection) went away, its doing. */
  aborted(): Error;
}

/** The body's bytes, read up to `limit`; beyond that the stream is cancelled. */
export async function readLimited(stream: ReadableStream<Uint8Array>, limit: number, errors: ReadLimitedErrors): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch {
      throw errors.aborted();
    }
    if (chunk.done) break;
    total += chunk.value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw errors.tooLarge(limit);
    }
    chunks.push(chunk.value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
