import { parseArgs } from 'node:util';

// What a run measures, and how long: the full benchmark (about ten minutes), --quick (a minute or
// two, smaller sizes and shorter runs, a smoke check), --list (only the whole list read at
// the largest table size, with the fill it needs) or --subscriptions (only the subscription rows,
// with their fills; with --quick, at the quick run's sizes) or --socketio (only the socket rows
// of both transports, /ws and Socket.IO; with --quick, at the quick run's sizes).

export type BenchMode =
  | 'full'
  | 'quick'
  | 'list'
  | 'subscriptions'
  | 'subscriptions-quick'
  | 'bulk'
  | 'bulk-quick'
  | 'sessions'
  | 'sessions-quick'
  | 'socketio'
  | 'socketio-quick';

/** Watch-list fan-out: sockets following lists of users while some of those users change. */
export interface WatchFanoutOptions {
  /** Users in the table (one of scaleUsers: the row runs at that scale point). */
  users: number;
  sockets: number;
  /** Users each socket follows, all among the changing users. */
  perSocket: number;
  /** The users whose statuses change, spread over the table. */
  changingUsers: number;
  changesPerSecond: number;
  durationS: number;
}

/** Sockets following everyone while a user changes every `periodMs`. */
export interface EveryoneOptions {
  /** Users in the table (one of scaleUsers). */
  users: number;
  sockets: number;
  periodMs: number;
  durationS: number;
  /** The longest wait after the changes for every socket's last list to be the final state. */
  settleS: number;
}

export interface BenchOptions {
  mode: BenchMode;
  connections: number;
  warmupS: number;
  ceilingS: number;
  httpS: number;
  mixedS: number;
  mixedChangeShare: number;
  socketS: number;
  sockets: number;
  /** Heartbeat frames per socket before its marker frame. */
  burst: number;
  fanoutSockets: number;
  fanoutChanges: number;
  memorySockets: number;
  memorySettleS: number;
  /** Users in the table for each scale point, smallest first. */
  scaleUsers: number[];
  /** The scale point whose HTTP run is compared with the ceilings (and where pgbench runs). */
  mainUsers: number;
  pgbench: { probeClients: number[]; probeS: number; mainS: number };
  /** A fill statement running longer is cancelled, and the larger scale points skipped. */
  fillTimeoutS: number;
  /** Away timeout of the service: nobody goes away during a run. */
  awayTimeoutSeconds: number;
  watchFanout: WatchFanoutOptions;
  everyone: EveryoneOptions;
  /** Users of two named sessions each, for the sessions rows (--sessions), smallest first. */
  sessionsUsers: number[];
}

const FULL: BenchOptions = {
  mode: 'full',
  connections: 64,
  warmupS: 3,
  ceilingS: 10,
  httpS: 15,
  mixedS: 10,
  mixedChangeShare: 0.1,
  socketS: 15,
  sockets: 64,
  burst: 32,
  fanoutSockets: 1_000,
  fanoutChanges: 20,
  memorySockets: 10_000,
  memorySettleS: 10,
  scaleUsers: [1_000, 100_000, 1_000_000],
  mainUsers: 100_000,
  pgbench: { probeClients: [4, 16, 64], probeS: 4, mainS: 10 },
  fillTimeoutS: 300,
  awayTimeoutSeconds: 3_600,
  watchFanout: {
    users: 1_000_000,
    sockets: 10_000,
    perSocket: 100,
    changingUsers: 1_000,
    changesPerSecond: 50,
    durationS: 25,
  },
  everyone: { users: 100_000, sockets: 50, periodMs: 100, durationS: 60, settleS: 30 },
  sessionsUsers: [1_000, 1_000_000],
};

const QUICK: BenchOptions = {
  ...FULL,
  mode: 'quick',
  warmupS: 1,
  ceilingS: 2,
  httpS: 3,
  mixedS: 2,
  socketS: 3,
  fanoutChanges: 5,
  memorySockets: 1_000,
  memorySettleS: 3,
  scaleUsers: [1_000, 20_000],
  mainUsers: 20_000,
  pgbench: { probeClients: [16], probeS: 2, mainS: 0 },
  fillTimeoutS: 30,
  watchFanout: { ...FULL.watchFanout, users: 20_000, sockets: 1_000, durationS: 10 },
  everyone: { ...FULL.everyone, users: 20_000, durationS: 10, settleS: 15 },
  sessionsUsers: [1_000, 20_000],
};

const LIST: BenchOptions = { ...FULL, mode: 'list', scaleUsers: [1_000_000], mainUsers: 1_000_000 };

/** Only the subscription rows, each at its table size (filled in that order). */
const subscriptionsOnly = (base: BenchOptions, mode: BenchMode): BenchOptions => {
  const scaleUsers = [...new Set([base.everyone.users, base.watchFanout.users])].sort(
    (a, b) => a - b,
  );
  return { ...base, mode, scaleUsers, mainUsers: scaleUsers.at(-1) ?? 0 };
};

export const USAGE = `npm run bench [-- --quick | --list | --subscriptions [--quick] | --bulk [--quick] | --sessions [--quick] | --socketio [--quick]]
  --quick           a smoke check in a minute or two: smaller tables, fewer sockets, shorter runs
  --bulk            only bulk pings (1,000 a request) beside pgbench's batches and single pings,
                    and WORKERS=2 beside 1, at 100,000 users (3 min); with --quick, at 20,000
  --sessions        only users of two named sessions each (phone, laptop), at 1,000 and
                    1,000,000 users: named-session heartbeats over HTTP, and the away sweep over
                    the sessions with nobody due and with 1% due (4 min); with --quick, at 20,000
  --list            only the whole list (GET /users/list/all) at 1,000,000 users, after the fill (2 min)
  --subscriptions   only the subscription rows: watch-list fan-out to 10,000 sockets at 1,000,000
                    users, and 50 sockets following everyone at 100,000 users (4 to 5 min);
                    with --quick, at the quick run's sizes
  --socketio        only the socket rows, over Socket.IO and over /ws beside them: memory per idle
                    socket (10,000), fan-out to 1,000 sockets, ping throughput at 1,000 users
                    (Socket.IO with and without acknowledgements); with --quick, smaller
DATABASE_URL: the server to create the scratch database on (default: an embedded server)`;

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      subscriptions: { type: 'boolean', default: false },
      bulk: { type: 'boolean', default: false },
      sessions: { type: 'boolean', default: false },
      socketio: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (values.bulk) {
    return values.quick ? { ...QUICK, mode: 'bulk-quick' } : { ...FULL, mode: 'bulk' };
  }
  if (values.sessions) {
    return values.quick ? { ...QUICK, mode: 'sessions-quick' } : { ...FULL, mode: 'sessions' };
  }
  if (values.subscriptions) {
    return values.quick
      ? subscriptionsOnly(QUICK, 'subscriptions-quick')
      : subscriptionsOnly(FULL, 'subscriptions');
  }
  if (values.socketio) {
    return values.quick ? { ...QUICK, mode: 'socketio-quick' } : { ...FULL, mode: 'socketio' };
  }
  return values.list ? LIST : values.quick ? QUICK : FULL;
}
