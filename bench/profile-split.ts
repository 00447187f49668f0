import fs from 'node:fs/promises';

// `npx tsx bench/profile-split.ts <file.cpuprofile> [user µs per ping] [kernel µs per ping]`:
// where a profile's busy time went, by component (see docs/performance.md, "Where a ping's
// microseconds go"). Each sample goes to the innermost frame of its stack that a rule below
// names; a native leaf (a hash, a regular expression) goes to its caller's component. Idle time
// (the event loop waiting) and start-up are left out. The profiler samples by the wall clock, so
// a system call during which the process lost its core (a loopback write wakes the reader) looks
// longer than the CPU it took: socket writes are shown apart, and given the CPU per ping measured
// from /proc (bench/ping-cpu.ts), the other components share the user time, the kernel's is
// written as measured.

type Rule = [component: string, test: (frame: CallFrame) => boolean];

interface CallFrame {
  functionName: string;
  url: string;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const WRITES = 'socket writes (writev)';

const RULES: Rule[] = [
  ['GC', (f) => f.functionName === '(garbage collector)'],
  [
    'socket writes (writev)',
    (f) => !f.url && /^(writev|writeUtf8String|writeBuffer)$/.test(f.functionName),
  ],
  ['key digest', (f) => /edge\/auth|crypto\/hash/.test(f.url)],
  ['request id', (f) => /request-context|crypto\/random/.test(f.url)],
  ['validation (zod)', (f) => /node_modules\/zod\/|presence\/validation/.test(f.url)],
  ['query builder (Kysely)', (f) => /node_modules\/kysely\//.test(f.url)],
  ['pg driver', (f) => /node_modules\/pg(-protocol|-pool|-types)?\//.test(f.url)],
  ['ping writer (group commit)', (f) => /presence\/ping-writer/.test(f.url)],
  ['metrics', (f) => /node_modules\/prom-client\/|http\/metrics\./.test(f.url)],
  ['logging', (f) => /node_modules\/pino|request-log|logger\./.test(f.url)],
  ['body reading', (f) => /http\/body\./.test(f.url)],
  ['security headers', (f) => /secure-headers|response-headers/.test(f.url)],
  [
    'Hono (router, context, middleware, routes)',
    (f) => /node_modules\/hono\/|\/(http|edge)\//.test(f.url),
  ],
  ['@hono/node-server: Request, Response, Headers', (f) => /@hono\/node-server|undici/.test(f.url)],
  ['node http (parser, ServerResponse)', (f) => /node:_http|node:internal\/http/.test(f.url)],
  [
    'node streams, sockets, events, timers',
    (f) =>
      /node:(net|stream|internal\/streams|internal\/stream_base|events|internal\/timers|timers)/.test(
        f.url,
      ),
  ],
  ['promises, microtasks', (f) => /runMicrotasks|processTicksAndRejections/.test(f.functionName)],
  [
    'start-up (module loading)',
    (f) =>
      /modules|bootstrap/.test(f.url) || /^(compile|wrapSafe|openFileHandle)/.test(f.functionName),
  ],
];

export function splitProfile(profile: Profile): Map<string, number> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);
  const componentOf = (id: number): string => {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      const rule = frame && RULES.find(([, test]) => test(frame));
      if (rule) return rule[0];
    }
    return 'other';
  };
  const split = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const name = byId.get(id)?.callFrame.functionName;
    if (name === '(idle)') return;
    const component = name === '(program)' ? 'V8 and native, unattributed' : componentOf(id);
    split.set(component, (split.get(component) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  return split;
}

async function main() {
  const [file, user, kernel] = process.argv.slice(2);
  if (!file) throw new Error('usage: npx tsx bench/profile-split.ts <file> [user µs] [kernel µs]');
  const split = splitProfile(JSON.parse(await fs.readFile(file, 'utf8')) as Profile);
  split.delete('start-up (module loading)');
  const writes = split.get(WRITES) ?? 0;
  split.delete(WRITES);
  const busy = [...split.values()].reduce((a, b) => a + b, 0);
  const line = (share: string, us: string, what: string) =>
    process.stdout.write(`${share.padStart(7)}  ${us.padStart(8)}  ${what}\n`);
  line('share', 'µs/ping', 'component');
  for (const [component, time] of [...split].sort((a, b) => b[1] - a[1])) {
    const share = time / busy;
    line(`${(share * 100).toFixed(1)}%`, user ? (share * Number(user)).toFixed(1) : '', component);
  }
  const wall = Math.round((writes / (busy + writes)) * 100);
  line(
    '',
    kernel ?? '',
    `kernel, measured (socket writes: ${wall}% of the profile's busy wall time)`,
  );
}

if (process.argv[1]?.endsWith('profile-split.ts')) await main();
