/**
 * Which HTTP client sent a request: undici (the fast path) or node:http (the interceptable one).
 * Both publish on `node:diagnostics_channel` when a request is created, so a test can tell the
 * paths apart without wrapping anything (a wrapper would itself look like an interceptor).
 *
 * ```ts
 * const clients = watchHttpClients();
 * await transport.send(...);
 * expect(clients.undici).toEqual(['/a']);
 * clients.stop();
 * ```
 *
 * @module
 */
import diagnosticsChannel from 'node:diagnostics_channel';

export interface HttpClientLog {
  /** Paths of the requests undici created (`undici:request:create`). */
  undici: string[];
  /** Paths of the requests node:http created (`http.client.request.start`). */
  nodeHttp: string[];
  stop(): void;
}

export function watchHttpClients(): HttpClientLog {
  const log: HttpClientLog = {
    undici: [],
    nodeHttp: [],
    stop: () => {
      diagnosticsChannel.unsubscribe('undici:request:create', onUndici);
      diagnosticsChannel.unsubscribe('http.client.request.start', onNodeHttp);
    },
  };
  const onUndici = (message: unknown) => log.undici.push((message as { request: { path: string } }).request.path);
  const onNodeHttp = (message: unknown) => log.nodeHttp.push((message as { request: { path: string } }).request.path);
  diagnosticsChannel.subscribe('undici:request:create', onUndici);
  diagnosticsChannel.subscribe('http.client.request.start', onNodeHttp);
  return log;
}
