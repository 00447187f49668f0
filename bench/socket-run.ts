import type { CpuTargets } from './cpu.js';
import { runFanout } from './fanout.js';
import { fillUsers } from './fill.js';
import { runMemory } from './memory.js';
import type { SocketTransport } from './memory-client.js';
import type { BenchOptions } from './options.js';
import { prepareRun } from './prepare.js';
import type { BenchResults } from './report.js';
import { type Service, type ServiceBuild, startService } from './service.js';
import { runSioSocketLoad } from './sio-socket-load.js';
import { runSocketLoad } from './socket-load.js';
import type { phaseClock } from './stats.js';

// The socket rows of both transports, /ws and Socket.IO: idle sockets' memory and fan-out (on
// a service started for each transport, the table empty or nearly), and ping throughput at the
// smallest table (on the service of that scale point). In the full and quick runs, and alone
// with --socketio (the Socket.IO rows and the /ws rows they are compared with, in the same run).

const n = (value: number) => value.toLocaleString('en');

export interface SocketContext {
  options: BenchOptions;
  r: BenchResults;
  build: ServiceBuild;
  databaseUrl: string;
  cpu: CpuTargets;
  phase: ReturnType<typeof phaseClock>;
}

const NAME: Record<SocketTransport, string> = { ws: '', socketio: 'Socket.IO ' };

/** Memory per idle socket, then fan-out, on a fresh service, for one transport. */
export async function measureIdleSockets(ctx: SocketContext, transport: SocketTransport) {
  const { options, r, phase } = ctx;
  const service = await startService({
    build: ctx.build,
    databaseUrl: ctx.databaseUrl,
    awayTimeoutSeconds: options.awayTimeoutSeconds,
  });
  const cpu = { ...ctx.cpu, servicePid: service.pid };
  const url = transport === 'socketio' ? service.url : service.wsUrl;
  try {
    const memory = await phase.run(
      `memory: ${n(options.memorySockets)} idle ${NAME[transport]}sockets`,
      () =>
        runMemory({
          url,
          transport,
          servicePid: service.pid,
          sockets: options.memorySockets,
          maxSettleS: options.memorySettleS,
          cpu,
        }),
    );
    if (transport === 'socketio') r.socketio = { ...r.socketio, pings: [], memory };
    else r.memory = memory;
    const fanout = await phase.run(
      `fan-out: ${n(options.fanoutSockets)} ${NAME[transport]}sockets`,
      () =>
        runFanout({
          url: service.url,
          wsUrl: service.wsUrl,
          transport,
          sockets: options.fanoutSockets,
          changes: options.fanoutChanges,
          cpu,
        }),
    );
    if (transport === 'socketio') r.socketio = { pings: [], ...r.socketio, fanout };
    else r.fanout = fanout;
  } finally {
    r.serviceWarnings.push(...service.warnings);
    await service.stop();
  }
}

/** Socket ping throughput over /ws, then over Socket.IO without and with acknowledgements. */
export async function measureSocketPings(ctx: SocketContext, service: Service, users: number) {
  const { options, r, phase } = ctx;
  const cpu = { ...ctx.cpu, servicePid: service.pid };
  const socket = await phase.run(`socket ping, ${options.sockets} sockets, ${n(users)} users`, () =>
    runSocketLoad({
      wsUrl: service.wsUrl,
      sockets: options.sockets,
      burst: options.burst,
      durationS: options.socketS,
      users,
      start: Math.floor(Math.random() * users),
      cpu,
    }),
  );
  r.socket = { ...socket, users };
  for (const mode of ['no-ack', 'ack'] as const) {
    const run = await phase.run(
      `Socket.IO ping (${mode}), ${options.sockets} sockets, ${n(users)} users`,
      () =>
        runSioSocketLoad({
          url: service.url,
          mode,
          sockets: options.sockets,
          burst: options.burst,
          durationS: options.socketS,
          users,
          start: Math.floor(Math.random() * users),
          cpu,
        }),
    );
    r.socketio = { ...r.socketio, pings: [...(r.socketio?.pings ?? []), { ...run, users }] };
  }
}

/** `npm run bench -- --socketio`: the socket rows of both transports, alone. */
export async function benchmarkSockets(
  options: BenchOptions,
  r: BenchResults,
  log: (line: string) => void,
): Promise<void> {
  const { phase, build, scratch, db, cpu } = await prepareRun(r, log);
  const ctx: SocketContext = { options, r, build, databaseUrl: scratch.url, cpu, phase };
  // The first service migrates the scratch database.
  await measureIdleSockets(ctx, 'ws');
  await measureIdleSockets(ctx, 'socketio');
  const users = options.scaleUsers[0] ?? 1_000;
  const fill = await phase.run(`fill to ${n(users)} users`, () =>
    fillUsers(db, 1, users, { timeoutS: options.fillTimeoutS, url: scratch.url }),
  );
  r.subscriptionFills = [...(r.subscriptionFills ?? []), fill];
  const service = await startService({
    build,
    databaseUrl: scratch.url,
    awayTimeoutSeconds: options.awayTimeoutSeconds,
  });
  try {
    await measureSocketPings(ctx, service, users);
  } finally {
    r.serviceWarnings.push(...service.warnings);
    await service.stop();
  }
}
