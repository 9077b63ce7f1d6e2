/**
 * Benchmark receiver: a separate process (forked by bench/run.ts) so that receiving costs no CPU
 * time of the process being measured. Plain JavaScript: it runs on bare `node`, without a loader.
 *
 * - Listens with node:http on 127.0.0.1 on `--ports N` random ports (default 1), keep-alive.
 * - Answers every request with `200 ok` (2 bytes), unless its port is set to hang: then the
 *   request is read and held for 30 s (or until the client goes away) before the answer. A port
 *   can also be given a delay: each answer then waits that many ms (a receiver that does some
 *   work before it answers, for scenarios that must not be CPU-bound).
 * - Reads `"sentAt":<ms>` from the body (the sender's `performance.timeOrigin + performance.now()`,
 *   both processes run on one machine) and records the emit→receipt latency.
 *
 * IPC protocol (parent → child `{ id, cmd, ... }`, child → parent `{ id, ... }`):
 * - `{ cmd: 'stats' }`  → `{ count, perPort, cpuUs, latency: { p50, p90, p99, max } | null }`, then resets
 *   (`cpuUs`: this process's user + system CPU since the previous call).
 * - `{ cmd: 'hang', ports: number[] }` → `{ ok: true }`: the listed port indices hang from now on;
 *   requests held on ports no longer listed are answered at once.
 * - `{ cmd: 'delay', delays: { [portIndex]: ms } }` → `{ ok: true }`: from now on the listed ports
 *   answer after that many ms, every other port at once (requests already waiting keep theirs).
 * On start the child sends `{ type: 'ready', ports: number[] }`. It exits when the parent disconnects.
 */
import { Buffer } from 'node:buffer';
import http from 'node:http';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { setTimeout, clearTimeout } from 'node:timers';

const HANG_MS = 30_000;
const SENT_AT = Buffer.from('"sentAt":');
const now = () => performance.timeOrigin + performance.now();

const portArg = process.argv.indexOf('--ports');
const portCount = portArg >= 0 ? Number(process.argv[portArg + 1]) : 1;

let latencies = new Float64Array(1 << 16);
let latencyCount = 0;
let counts = new Array(portCount).fill(0);
let hanging = new Set();
/** Answer delay in ms by port index (0: at once). */
let delays = new Array(portCount).fill(0);
/** CPU time of this process since the last stats call: what receiving cost. */
let cpuSince = process.cpuUsage();
/** Held requests: response → timer. */
const held = new Map();

function recordLatency(ms) {
  if (latencyCount === latencies.length) {
    const grown = new Float64Array(latencies.length * 2);
    grown.set(latencies);
    latencies = grown;
  }
  latencies[latencyCount++] = ms;
}

/** Parses the number after `"sentAt":` without decoding the whole body. */
function sentAtOf(body) {
  const at = body.indexOf(SENT_AT);
  if (at < 0) return null;
  const start = at + SENT_AT.length;
  let end = start;
  while (end < body.length && end < start + 32) {
    const c = body[end];
    // digits, '.', '-', 'e', '+'
    if ((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x65 || c === 0x2b) end++;
    else break;
  }
  const value = Number(body.toString('latin1', start, end));
  return Number.isFinite(value) ? value : null;
}

function answer(res) {
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
  res.end('ok');
}

function handler(index) {
  return (req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const receivedAt = now();
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const sentAt = sentAtOf(body);
      if (sentAt !== null) recordLatency(receivedAt - sentAt);
      counts[index]++;
      if (!hanging.has(index)) {
        const delay = delays[index];
        if (delay > 0) setTimeout(answer, delay, res);
        else answer(res);
        return;
      }
      const timer = setTimeout(() => {
        held.delete(res);
        answer(res);
      }, HANG_MS);
      held.set(res, timer);
      res.on('close', () => {
        clearTimeout(timer);
        held.delete(res);
      });
    });
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function takeStats() {
  const sorted = latencies.slice(0, latencyCount).sort();
  const cpu = process.cpuUsage(cpuSince);
  cpuSince = process.cpuUsage();
  const result = {
    count: counts.reduce((a, b) => a + b, 0),
    cpuUs: cpu.user + cpu.system,
    perPort: counts,
    latency:
      sorted.length === 0
        ? null
        : { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] },
  };
  latencyCount = 0;
  counts = new Array(portCount).fill(0);
  return result;
}

function setDelays(byIndex) {
  delays = new Array(portCount).fill(0);
  for (const [index, ms] of Object.entries(byIndex ?? {})) {
    if (Number(index) < portCount && Number.isFinite(ms) && ms > 0) delays[Number(index)] = ms;
  }
}

function setHanging(ports) {
  hanging = new Set(ports);
  for (const [res, timer] of held) {
    clearTimeout(timer);
    held.delete(res);
    answer(res);
  }
}

const servers = [];
const ports = [];
for (let i = 0; i < portCount; i++) {
  const server = http.createServer({ keepAlive: true }, handler(i));
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  server.requestTimeout = 0;
  server.maxRequestsPerSocket = 0;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  servers.push(server);
  ports.push(server.address().port);
}

process.on('message', (message) => {
  if (!message || typeof message !== 'object') return;
  if (message.cmd === 'stats') process.send({ id: message.id, ...takeStats() });
  else if (message.cmd === 'hang') {
    setHanging(message.ports ?? []);
    process.send({ id: message.id, ok: true });
  } else if (message.cmd === 'delay') {
    setDelays(message.delays);
    process.send({ id: message.id, ok: true });
  } else process.send({ id: message.id, error: `unknown command ${String(message.cmd)}` });
});

process.on('disconnect', () => {
  for (const timer of held.values()) clearTimeout(timer);
  for (const server of servers) server.closeAllConnections?.();
  process.exit(0);
});

process.send({ type: 'ready', ports });
