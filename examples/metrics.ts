// Prometheus metrics of a pool: /metrics served on 127.0.0.1 while calls run against an embedded
// server that fails one request in twenty once (so retries show), then one scrape printed, and a clean
// exit. The names and labels are go-grpc-middleware v2's, so Go dashboards work as they are.
// Run: npx tsx examples/metrics.ts [calls (default 200)] [ms to keep serving /metrics after (default 0)]
import * as grpc from '@grpc/grpc-js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ChannelPool } from '../src/index.js';
import { prometheusMetrics } from '../src/adapters/prometheus.js';
import { loadUserService } from './embedded-server.js';

const calls = Math.min(Number(process.argv[2] ?? 200), 10_000);
const serveMs = Math.min(Number(process.argv[3] ?? 0), 600_000);

// The backend: every twentieth request fails once with UNAVAILABLE (the retry then succeeds).
const UserService = loadUserService();
const backend = new grpc.Server();
const failedOnce = new Set<number>();
backend.addService(UserService.service, {
  QueryBasicInfoByID(call: grpc.ServerUnaryCall<{ id: number }, unknown>, callback: grpc.sendUnaryData<{ id: number; name: string }>) {
    const { id } = call.request;
    if (id % 20 === 0 && !failedOnce.has(id)) {
      failedOnce.add(id);
      callback({ code: grpc.status.UNAVAILABLE, details: 'warming up' });
      return;
    }
    callback(null, { id, name: `user-${id}` });
  },
});
const port = await new Promise<number>((resolve, reject) =>
  backend.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
);

// A 5 s deadline: the first calls dial the channel too, which can take seconds on a loaded machine.
const pool = new ChannelPool({ deadlineMs: 5_000, retry: { initialDelayMs: 5, maxDelayMs: 20 } });
const registry = new Registry();
const metrics = prometheusMetrics(pool, { registry });

// /metrics on loopback, as Prometheus would scrape it.
const http = createServer((request, response) => {
  if (request.url !== '/metrics') {
    response.writeHead(404).end();
    return;
  }
  registry.metrics().then(
    (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
    (error: unknown) => response.writeHead(500).end(String(error)),
  );
});
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
const metricsUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/metrics`;
console.log(`serving ${metricsUrl}`);

// A read: idempotent, so its failures may be retried.
const users = pool.client(UserService, `127.0.0.1:${port}`, { methods: { QueryBasicInfoByID: { idempotent: true } } });
let failed = 0;
for (let id = 1; id <= calls; id += 10) {
  const batch = Array.from({ length: Math.min(10, calls - id + 1) }, (_, i) => users.QueryBasicInfoByID({ id: id + i }));
  for (const outcome of await Promise.allSettled(batch)) if (outcome.status === 'rejected') failed++;
}
console.log(`${calls} calls, ${failed} failed`);

const scrape = await (await fetch(metricsUrl)).text();
const wanted =
  /^grpc_client_(started_total|handled_total|attempts_total|retries_total|retries_throttled_total|handling_seconds_(count|bucket\{le="0.005")|msg_sent_total|msg_received_total|circuit_state|in_flight)/;
console.log(
  scrape
    .split('\n')
    .filter((line) => wanted.test(line))
    .join('\n'),
);

if (serveMs > 0) {
  console.log(`serving /metrics for ${serveMs} ms more`);
  await new Promise((resolve) => setTimeout(resolve, serveMs));
}
metrics.dispose();
await pool.close();
await new Promise((resolve) => http.close(resolve));
backend.forceShutdown();
console.log('closed');
