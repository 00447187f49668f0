import { parseArgs } from 'node:util';

// What a soak run does, and for how long. Every knob has a default that fits a small machine
// (2 cores); `--help` lists them.

export interface SoakOptions {
  minutes: number;
  /** Users in the table: every one is pinged once at the start, then the load picks among them. */
  users: number;
  /** Sockets kept open at all times, each one dropped after its life and replaced. */
  sockets: number;
  /** Processes the sockets are spread over (frames are read off the main process). */
  clientProcesses: number;
  /** Concurrent HTTP loops, each with its own slice of users. */
  httpLoops: number;
  /** Users each HTTP loop keeps pinging at a time; the others are away. */
  activePerLoop: number;
  /** Share of sockets that ping a user of their own while they live. */
  pingingSocketShare: number;
  /** Share of heartbeats (HTTP and socket) that change the user's status instead. */
  flipShare: number;
  /** A socket's life, uniform between these, in seconds. */
  socketLifeS: [number, number];
  /** Share of replacements that resume the dropped socket's view with `?since=`. */
  resumeShare: number;
  sampleS: number;
  /** Pauses mid-run to compare views; one more always comes at the end. */
  checkpoints: number;
  /** Live sockets whose view is compared at each check (all of them if fewer). */
  checkSample: number;
  awayTimeoutSeconds: number;
  /** Memory verdict: the last third's median RSS at most this much above the first third's. */
  rssGrowthLimit: number;
  /** Descriptor verdict: descriptors other than sockets may grow by at most this many. */
  fdMargin: number;
}

const HELP = `npm run soak -- [--minutes 10] [--users 500] [--sockets 1000] [--client-processes 2] [--http-loops 4]
  [--active-per-loop 20] [--checkpoints N] [--check-sample 200] [--sample-seconds 10]

Builds the service, starts it on a scratch database (DATABASE_URL's server, or an embedded one)
with AWAY_TIMEOUT_SECONDS=3, and runs mixed HTTP and socket pings with a churn of sockets for
the given minutes; then judges memory, descriptors, open sockets, socket views and 5xx answers.
Exits 0 on PASS, 1 on FAIL; the JSON summary goes to /tmp/presently-soak-<time>.json.`;

export function parseOptions(argv: string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string' },
      users: { type: 'string' },
      sockets: { type: 'string' },
      'http-loops': { type: 'string' },
      'client-processes': { type: 'string' },
      'active-per-loop': { type: 'string' },
      checkpoints: { type: 'string' },
      'check-sample': { type: 'string' },
      'sample-seconds': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  const number = (name: string, value: string | undefined, fallback: number, min: number) => {
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min) {
      throw new Error(`--${name} must be a number of at least ${min} (got ${value})`);
    }
    return parsed;
  };
  const minutes = number('minutes', values.minutes, 10, 0.5);
  const users = Math.round(number('users', values.users, 500, 100));
  return {
    minutes,
    users,
    sockets: Math.round(number('sockets', values.sockets, 1_000, 1)),
    clientProcesses: Math.round(number('client-processes', values['client-processes'], 2, 1)),
    httpLoops: Math.round(number('http-loops', values['http-loops'], 4, 1)),
    activePerLoop: Math.round(number('active-per-loop', values['active-per-loop'], 20, 1)),
    pingingSocketShare: 0.05,
    flipShare: 0.02,
    socketLifeS: [3, 60],
    resumeShare: 0.5,
    sampleS: number('sample-seconds', values['sample-seconds'], 10, 1),
    checkpoints: Math.round(
      number('checkpoints', values.checkpoints, minutes >= 3 ? 3 : minutes >= 1 ? 1 : 0, 0),
    ),
    checkSample: Math.round(number('check-sample', values['check-sample'], 200, 1)),
    awayTimeoutSeconds: 3,
    rssGrowthLimit: 0.15,
    fdMargin: 15,
  };
}
