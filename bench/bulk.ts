import autocannon from 'autocannon';
import { type CpuShare, type CpuTargets, startCpuSampler } from './cpu.js';
import type { HttpLoadResult } from './http-load.js';
import { ACCESS_KEY } from './service.js';
import { pingBodies } from './users.js';

// Bulk pings: `POST /users/pings` with 1,000 heartbeats a request, walking the users as the
// single-ping runs do, measured in pings a second (requests x 1,000).

export const PINGS_PER_REQUEST = 1_000;

export interface BulkLoadResult {
  connections: number;
  pingsPerRequest: number;
  durationS: number;
  requests: number;
  pingsPerSecond: number;
  latencyMs: HttpLoadResult['latencyMs'];
  errors: number;
  non2xx: number;
  cpu?: CpuShare;
}

export async function runBulkLoad(options: {
  url: string;
  connections: number;
  durationS: number;
  users: number;
  cpu?: CpuTargets;
}): Promise<BulkLoadResult> {
  const pings = pingBodies(options.users, 0, Math.floor(Math.random() * options.users));
  const body = () => {
    const group = Array.from({ length: PINGS_PER_REQUEST }, () => pings.next());
    return `{"pings":[${group.join(',')}]}`;
  };
  const sampler = options.cpu ? startCpuSampler(options.cpu) : undefined;
  const result = await autocannon({
    url: `${options.url}/users/pings`,
    method: 'POST',
    connections: options.connections,
    pipelining: 1,
    duration: options.durationS,
    timeout: 10,
    headers: { authorization: `Bearer ${ACCESS_KEY}`, 'content-type': 'application/json' },
    requests: [{ setupRequest: (request) => ({ ...request, body: body() }) }],
  });
  const cpu = await sampler?.stop();
  const ok = result['2xx'];
  return {
    connections: options.connections,
    pingsPerRequest: PINGS_PER_REQUEST,
    durationS: Math.round(result.duration * 100) / 100,
    requests: ok,
    pingsPerSecond: Math.round((ok * PINGS_PER_REQUEST) / result.duration),
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
      mean: Math.round(result.latency.mean * 100) / 100,
    },
    errors: result.errors,
    non2xx: result.non2xx,
    ...(cpu ? { cpu } : {}),
  };
}
