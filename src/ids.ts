/**
 * Identifiers: a short type prefix plus a ULID. ULIDs sort by creation time, so "newest first"
 * listings and cursor pagination can order by id alone, in memory and in SQL indexes alike.
 */
import { randomBytes } from 'node:crypto';
import { encodeTime } from 'ulid';

// ulid's default source makes one crypto call per character; drawing from a pooled buffer of
// crypto-random bytes is ~50x cheaper. A byte >> 3 picks each of the 32 characters uniformly.
let pool = randomBytes(4096);
let offset = 0;
function randomDigit(): number {
  if (offset === pool.length) {
    pool = randomBytes(4096);
    offset = 0;
  }
  return pool[offset++]! >> 3;
}

const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_LEN = 10;
const ULID_LEN = 26;
// The current ULID as Crockford base32 digits and their char codes. ulid's monotonicFactory builds
// each id char by char (≈30 string allocations) and increments via substr; doing it in place and
// making one flat string per id (cheap to hash as a Map key, compact to keep) is several times
// cheaper on the emit path.
const digits = new Uint8Array(ULID_LEN);
const codes: number[] = new Array<number>(ULID_LEN).fill(48);
let lastTime = 0;

/** The char codes of `<prefix>_<ULID>` for one prefix, and how much of its ULID is out of date. */
interface IdBuffer {
  readonly prefix: string;
  readonly codes: number[];
  /** Index in `codes` of the ULID's first character. */
  readonly start: number;
  /** The lowest ULID position changed since these codes were last brought up to date. */
  staleFrom: number;
}

/**
 * One reusable buffer per prefix (four at most, so a list): within a millisecond an id differs
 * from the last in its last characters only.
 */
const buffers: IdBuffer[] = [];

/** Positions from `from` on changed: every prefix's buffer must copy them again. */
function changedFrom(from: number): void {
  for (let i = 0; i < buffers.length; i++) {
    const buffer = buffers[i]!;
    if (from < buffer.staleFrom) buffer.staleFrom = from;
  }
}

/**
 * Advances the ULID with the same semantics as ulid's `monotonicFactory`: within (or behind) the
 * last millisecond, the random part is incremented.
 */
function nextUlid(seedTime: number): void {
  const seed = !seedTime || Number.isNaN(seedTime) ? Date.now() : seedTime;
  // (Before the first id there is nothing to increment: a first time that is not positive goes to encodeTime and throws.)
  if (seed <= lastTime && lastTime > 0) {
    let i = ULID_LEN - 1;
    while (i >= TIME_LEN && digits[i] === 31) {
      digits[i] = 0;
      codes[i] = 48; // '0'
      i--;
    }
    if (i < TIME_LEN) {
      changedFrom(TIME_LEN);
      throw new Error('ULID random component overflowed within one millisecond');
    }
    codes[i] = ENCODING.charCodeAt(++digits[i]!);
    changedFrom(i);
  } else {
    const time = encodeTime(seed, TIME_LEN); // validates: throws on negative, fractional or too-large times
    lastTime = seed;
    for (let i = 0; i < TIME_LEN; i++) codes[i] = time.charCodeAt(i);
    for (let i = TIME_LEN; i < ULID_LEN; i++) codes[i] = ENCODING.charCodeAt((digits[i] = randomDigit()));
    changedFrom(0);
  }
}

/**
 * Prefixes: `wh_` webhook, `evt_` emitted event, `msg_` delivery (the Standard Webhooks message
 * id), `exec_` attempt record.
 */
export type IdPrefix = 'wh' | 'evt' | 'msg' | 'exec';

function bufferOf(prefix: string): IdBuffer {
  for (let i = 0; i < buffers.length; i++) if (buffers[i]!.prefix === prefix) return buffers[i]!;
  const head = [...Array.from(prefix, (c) => c.charCodeAt(0)), 95 /* _ */];
  const buffer: IdBuffer = { prefix, codes: [...head, ...codes], start: head.length, staleFrom: ULID_LEN };
  buffers.push(buffer);
  return buffer;
}

/** A new id such as `msg_01JD3…`. `now` lets an injected clock stamp the id. */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  nextUlid(now);
  const buffer = bufferOf(prefix);
  const out = buffer.codes;
  const start = buffer.start;
  for (let i = buffer.staleFrom; i < ULID_LEN; i++) out[start + i] = codes[i]!;
  buffer.staleFrom = ULID_LEN;
  return String.fromCharCode.apply(null, out);
}
