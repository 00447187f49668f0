import { parseArgs } from 'node:util';

// What a run measures, and how long: the full benchmark (about ten minutes), --quick (under a
// minute, smaller sizes and shorter runs, a smoke check) or --list (only the whole list read at
// the largest table size, with the fill it needs).

export interface BenchOptions {
  mode: 'full' | 'quick' | 'list';
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
};

const LIST: BenchOptions = { ...FULL, mode: 'list', scaleUsers: [1_000_000], mainUsers: 1_000_000 };

export const USAGE = `npm run bench [-- --quick | --list]
  --quick     a smoke check in under a minute: smaller tables, fewer sockets, shorter runs
  --list      only the whole list (GET /users/list/all) at 1,000,000 users, after the fill (2 min)
DATABASE_URL: the server to create the scratch database on (default: an embedded server)`;

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  return values.list ? LIST : values.quick ? QUICK : FULL;
}
