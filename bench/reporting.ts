import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { migrate, readMigrations } from '../src/db/migrate.js';
import { createScratchDatabase, onInterrupt, type ScratchDatabase } from './database.js';
import { checkChangeLog, type GenerateResult, generateChangeLog, userId } from './generate.js';

// How fast the reports answer over a big change log: ten million rows of ten thousand users over
// ninety days, in a scratch database that is dropped afterwards. Run it with
//   npm run bench:reporting                 # 10,000,000 rows
//   npm run bench:reporting -- --quick      # 200,000 rows, a smoke test
//   npm run bench:reporting -- --rows 1000000 --runs 7
// With DATABASE_URL, a scratch database is created on that server; without, an embedded server
// is started in a temporary folder. Either is removed at the end, on failure and on Ctrl-C too.

export interface ReportingBenchmarkOptions {
  /** Rows in presently.status_changes. Default 10,000,000. */
  rows?: number;
  /** Default 10,000, or fewer so that each user has at least 100 changes. */
  users?: number;
  /** The period the history covers, ending now. Default 90. */
  days?: number;
  /** Timed runs of each query. Default 5. */
  runs?: number;
  /**
   * A query is not run again once its runs took this long in all (default 30 s), so that a slow
   * query bounds the benchmark instead of multiplying it; it always runs at least twice.
   */
  queryBudgetMs?: number;
  /** The server to create the scratch database on. Default process.env.DATABASE_URL. */
  databaseUrl?: string | undefined;
  /** Progress lines. Default: stderr. */
  log?: (line: string) => void;
  /** Clean up on SIGINT/SIGTERM, then let the signal end the process. Default true. */
  handleSignals?: boolean;
}

export interface QueryMeasure {
  name: string;
  description: string;
  sql: string;
  params: unknown[];
  /** Rows answered (for the prune, rows it deleted). */
  rows: number;
  /** One per run; fewer than asked when the query's time budget ran out. */
  samplesMs: number[];
  minMs: number;
  medianMs: number;
  maxMs: number;
}

export interface ReportingBenchmarkResult {
  benchmark: 'reporting';
  startedAt: string;
  finishedAt: string;
  ok: boolean;
  environment: {
    database: ScratchDatabase['kind'];
    serverVersion: string;
    settings: Record<string, string>;
    node: string;
    platform: string;
    cpus: number;
    memoryGiB: number;
    /** os.loadavg() before and after measuring: other work on the machine skews the times. */
    loadAverage: { beforeMeasuring: number[]; afterMeasuring: number[] };
  };
  data: GenerateResult & { days: number; tableBytes: number; indexBytes: Record<string, number> };
  periods: { yesterday: [string, string]; older: [string, string]; olderDaysAgo: number };
  queries: QueryMeasure[];
  plan: {
    query: string;
    /** auto_explain of the statements inside reporting.activity, or EXPLAIN of its body. */
    method: 'auto_explain' | 'function body';
    text: string;
    usesPeriodIndex: boolean;
    seqScanOnStatusChanges: boolean;
  };
  /** The goal: a one-day activity report in well under a second (median). */
  oneDayReportMs: { yesterday: number; older: number; underOneSecond: boolean };
  totalMs: number;
}

/** Thrown when the plan shows the period index unused; the measurements are in `result`. */
export class BenchmarkAssertionError extends Error {
  constructor(
    message: string,
    readonly result: ReportingBenchmarkResult,
  ) {
    super(message);
  }
}

const DAY_MS = 86_400_000;
const SETTINGS = [
  'server_version',
  'shared_buffers',
  'work_mem',
  'effective_cache_size',
  'random_page_cost',
  'max_parallel_workers_per_gather',
  'jit',
  'data_checksums',
];

export async function runReportingBenchmark(
  options: ReportingBenchmarkOptions = {},
): Promise<ReportingBenchmarkResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const rows = options.rows ?? 10_000_000;
  const users = options.users ?? Math.max(1, Math.min(10_000, Math.floor(rows / 100)));
  const days = options.days ?? 90;
  const runs = options.runs ?? 5;
  const budgetMs = options.queryBudgetMs ?? 30_000;
  if (!(Number.isInteger(rows) && rows > 0)) throw new Error('rows must be a positive integer');
  if (!(Number.isInteger(users) && users > 0)) throw new Error('users must be a positive integer');
  if (!(Number.isInteger(days) && days >= 3)) throw new Error('days must be an integer >= 3');
  if (!(Number.isInteger(runs) && runs > 0)) throw new Error('runs must be a positive integer');

  const startedAt = new Date();
  const started = performance.now();
  const creating = createScratchDatabase({
    databaseUrl: 'databaseUrl' in options ? options.databaseUrl : process.env.DATABASE_URL,
    log,
  });
  // Installed before the database exists, so that a Ctrl-C while the server starts removes it too.
  const removeHandlers =
    options.handleSignals === false
      ? () => {}
      : onInterrupt(async () => (await creating.catch(() => undefined))?.drop(), log);
  let scratch: ScratchDatabase;
  try {
    scratch = await creating;
  } catch (error) {
    removeHandlers();
    throw error;
  }
  const client = new pg.Client({
    connectionString: scratch.url,
    application_name: 'presently-bench',
  });
  // A backend ended under it (Ctrl-C drops the database with force) fails the query it runs.
  client.on('error', () => {});
  try {
    log(`scratch database ${scratch.name} (${scratch.kind})`);
    await migrate(scratch.url, await readMigrations(), pino({ level: 'warn' }));
    await client.connect();

    // Periods: yesterday and a day about sixty days ago, UTC days, both inside the history.
    const to = new Date();
    const today = Math.floor(to.getTime() / DAY_MS) * DAY_MS;
    const olderDaysAgo = Math.min(60, days - 2);
    const day = (start: number): [string, string] => [
      new Date(start).toISOString(),
      new Date(start + DAY_MS).toISOString(),
    ];
    const yesterday = day(today - DAY_MS);
    const older = day(today - olderDaysAgo * DAY_MS);

    log(
      `generating ${rows.toLocaleString('en')} changes of ${users.toLocaleString('en')} users over ${days} days`,
    );
    const generated = await generateChangeLog(client, { rows, users, days, to, log });
    log(`generated in ${(generated.totalMs / 1000).toFixed(1)} s`);
    const sample = [1, Math.ceil(users / 2), users].map((n) => userId(n, users));
    const problems = await checkChangeLog(client, sample);
    if (problems.length > 0) throw new Error(`the generated log is wrong:\n${problems.join('\n')}`);

    const sizes = await client.query<{ name: string; bytes: string }>(`
      select c.relname as name, pg_relation_size(c.oid) as bytes
      from pg_class c
      where c.oid = 'presently.status_changes'::regclass
         or c.oid in (select indexrelid from pg_index
                      where indrelid = 'presently.status_changes'::regclass)`);
    const indexBytes: Record<string, number> = {};
    let tableBytes = 0;
    for (const row of sizes.rows) {
      if (row.name === 'status_changes') tableBytes = Number(row.bytes);
      else indexBytes[row.name] = Number(row.bytes);
    }

    const settings: Record<string, string> = {};
    const shown = await client.query<{ name: string; setting: string }>(
      `select name, current_setting(name) as setting from unnest($1::text[]) name`,
      [SETTINGS],
    );
    for (const row of shown.rows) settings[row.name] = row.setting;
    const jit = await client.query<{ available: boolean }>(
      'select pg_jit_available() as available',
    );
    settings.jit_available = String(jit.rows[0]?.available);

    // The load left dirty buffers for the checkpointer to write meanwhile: write them now, where
    // allowed (superuser or pg_checkpoint), so that they do not compete with the measurements.
    await client.query('checkpoint').catch(() => {});
    const loadBefore = os.loadavg().map(round);

    // Each query is measured in a session of its own. PostgreSQL 18 caches the plans of SQL
    // functions per session, with custom plans (planned for the arguments given) for the first
    // five calls and perhaps a generic plan after: a fresh session per query keeps every run of
    // every query on the same footing, as the first calls of a session, the ones explained below.
    const session = async <T>(work: (c: pg.Client) => Promise<T>): Promise<T> => {
      const c = new pg.Client({
        connectionString: scratch.url,
        application_name: 'presently-bench',
      });
      c.on('error', () => {});
      await c.connect();
      try {
        // A query that never ends must not hold the run forever.
        await c.query(`set statement_timeout = '5min'`);
        return await work(c);
      } finally {
        await c.end().catch(() => {});
      }
    };

    const user = userId(Math.ceil(users / 2), users);
    const queries: QueryMeasure[] = [];
    const measure = async (
      name: string,
      description: string,
      sql: string,
      params: unknown[],
      // One run: the rows answered and, when it times itself, the time of its statement.
      once: (client: pg.Client) => Promise<{ rows: number; ms?: number }> = async (c) => ({
        rows: (await c.query(sql, params)).rowCount ?? 0,
      }),
    ) => {
      const samplesMs: number[] = [];
      let answered = 0;
      let spent = 0;
      await session(async (c) => {
        for (let run = 0; run < runs && (run < 2 || spent < budgetMs); run++) {
          const begin = performance.now();
          const done = await once(c);
          samplesMs.push(done.ms ?? performance.now() - begin);
          spent += performance.now() - begin;
          answered = done.rows;
        }
      });
      if (samplesMs.length < runs) {
        log(`  ${name}: ${samplesMs.length} runs only, past its ${budgetMs / 1000} s budget`);
      }
      const sorted = [...samplesMs].sort((a, b) => a - b);
      const measured: QueryMeasure = {
        name,
        description,
        sql: sql.replace(/\s+/g, ' ').trim(),
        params,
        rows: answered,
        samplesMs: samplesMs.map(round),
        minMs: round(sorted[0] ?? 0),
        medianMs: round(median(sorted)),
        maxMs: round(sorted[sorted.length - 1] ?? 0),
      };
      queries.push(measured);
      log(`  ${name}: median ${measured.medianMs} ms (${answered} rows)`);
    };

    log(`measuring, ${runs} runs each (load average ${loadBefore.join(' ')})`);
    const activity = 'select * from reporting.activity($1::timestamptz, $2::timestamptz)';
    await measure('activity-yesterday', 'reporting.activity, yesterday (UTC)', activity, yesterday);
    await measure(
      `activity-${olderDaysAgo}-days-ago`,
      `reporting.activity, the UTC day ${olderDaysAgo} days ago`,
      activity,
      older,
    );
    await measure(
      'concurrency-yesterday',
      'reporting.concurrency, yesterday (UTC)',
      'select * from reporting.concurrency($1::timestamptz, $2::timestamptz)',
      yesterday,
    );
    await measure(
      'user-history-yesterday',
      "one user's changes overlapping yesterday",
      `select position, status, previous, changed_at, ended_at
       from presently.status_changes
       where user_id = $1 and changed_at < $3 and (ended_at is null or ended_at > $2)
       order by position`,
      [user, ...yesterday],
    );
    const prune = `select presently.prune_history(interval '30 days', 10000) as pruned`;
    await measure(
      'prune-batch',
      'presently.prune_history of 10,000 rows, rolled back',
      prune,
      [],
      async (c) => {
        // Only the prune itself is timed; the rollback puts the rows back for the next run.
        await c.query('begin');
        try {
          const begin = performance.now();
          const { rows: pruned } = await c.query<{ pruned: number }>(prune);
          return { rows: pruned[0]?.pruned ?? 0, ms: performance.now() - begin };
        } finally {
          await c.query('rollback');
        }
      },
    );

    const loadAfter = os.loadavg().map(round);
    const plan = await session((c) => explainActivity(c, yesterday));
    const medianOf = (name: string) => queries.find((q) => q.name === name)?.medianMs ?? Infinity;
    const oneDayReportMs = {
      yesterday: medianOf('activity-yesterday'),
      older: medianOf(`activity-${olderDaysAgo}-days-ago`),
      underOneSecond: false,
    };
    oneDayReportMs.underOneSecond = oneDayReportMs.yesterday < 1000 && oneDayReportMs.older < 1000;

    const result: ReportingBenchmarkResult = {
      benchmark: 'reporting',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      ok: plan.usesPeriodIndex && !plan.seqScanOnStatusChanges,
      environment: {
        database: scratch.kind,
        serverVersion: settings.server_version ?? '',
        settings,
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        cpus: os.cpus().length,
        memoryGiB: round(os.totalmem() / 2 ** 30),
        loadAverage: { beforeMeasuring: loadBefore, afterMeasuring: loadAfter },
      },
      data: { ...generated, days, tableBytes, indexBytes },
      periods: { yesterday, older, olderDaysAgo },
      queries,
      plan,
      oneDayReportMs,
      totalMs: 0,
    };
    result.totalMs = round(performance.now() - started);
    if (!result.ok) {
      throw new BenchmarkAssertionError(
        `reporting.activity does not use the GiST index status_changes_period ` +
          `(seq scan on status_changes: ${plan.seqScanOnStatusChanges}):\n${plan.text}`,
        result,
      );
    }
    return result;
  } finally {
    await client.end().catch(() => {});
    await scratch.drop();
    removeHandlers();
  }
}

/**
 * EXPLAIN (ANALYZE, BUFFERS) of the statements inside reporting.activity for a period. The
 * function is not inlined (security definer), so a plain EXPLAIN shows only a Function Scan:
 * auto_explain, with nested statements, reports the plans inside it to the client as LOG
 * messages (only statements over 1 ms, so not each of the small calls it makes per row). Where
 * auto_explain cannot be loaded (not a superuser), the function's body is explained instead, with
 * the period as parameters. In a fresh session this is the plan of a session's first calls.
 */
export async function explainActivity(
  client: pg.Client,
  period: [string, string],
  method: 'auto' | 'function body' = 'auto',
): Promise<ReportingBenchmarkResult['plan']> {
  const query = `select * from reporting.activity('${period[0]}', '${period[1]}')`;
  let used: ReportingBenchmarkResult['plan']['method'] = 'auto_explain';
  let text = '';
  const notices: string[] = [];
  const onNotice = (notice: { message?: string }) => {
    if (notice.message?.includes('plan:')) notices.push(notice.message);
  };
  try {
    if (method !== 'auto') throw new Error('not asked for');
    await client.query(`load 'auto_explain'`);
    await client.query(`
      set auto_explain.log_min_duration = 1;
      set auto_explain.log_analyze = on;
      set auto_explain.log_buffers = on;
      set auto_explain.log_nested_statements = on;
      set client_min_messages = log`);
    client.on('notice', onNotice);
    await client.query(query);
    text = notices.filter((n) => n.includes('status_changes')).join('\n');
  } catch {
    used = 'function body';
  } finally {
    client.off('notice', onNotice);
    await client
      .query('reset client_min_messages; reset auto_explain.log_min_duration')
      .catch(() => {});
  }
  if (!text) {
    used = 'function body';
    // Its arguments become parameters: the period's two, null (the default) for the others.
    const { rows } = await client.query<{ body: string; names: string[]; types: string[] }>(
      `select p.prosrc as body, p.proargnames as names,
              array(select format_type(t, null) from unnest(p.proargtypes) t) as types
       from pg_proc p
       where p.oid = 'reporting.activity'::regproc`,
    );
    const fn = rows[0];
    if (!fn) throw new Error('no function reporting.activity');
    let body = fn.body.trim().replace(/;\s*$/, '');
    fn.types.forEach((type, i) => {
      const name = fn.names[i];
      if (name) body = body.replace(new RegExp(`\\b${name}\\b`, 'g'), () => `$${i + 1}::${type}`);
    });
    const values = fn.types.map((_, i) => (i < 2 ? period[i] : null));
    const explained = await client.query<{ 'QUERY PLAN': string }>(
      `explain (analyze, buffers) ${body}`,
      values,
    );
    text = explained.rows.map((row) => row['QUERY PLAN']).join('\n');
  }
  return {
    query,
    method: used,
    text,
    usesPeriodIndex: /(Index|Index Only|Bitmap Index) Scan (using|on) status_changes_period\b/.test(
      text,
    ),
    seqScanOnStatusChanges: /Seq Scan on status_changes\b/.test(text),
  };
}

function median(sorted: number[]): number {
  if (sorted.length === 0) return 0;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** The result as a few lines of text. */
export function formatResult(result: ReportingBenchmarkResult): string {
  const { data } = result;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;
  const lines = [
    `reporting benchmark, PostgreSQL ${result.environment.serverVersion} (${result.environment.database})`,
    `${data.rows.toLocaleString('en')} rows, ${data.users.toLocaleString('en')} users, ${data.days} days ` +
      `(${data.from} .. ${data.to})`,
    `generated in ${seconds(data.totalMs)}: insert ${seconds(data.insertMs)}, ` +
      `indexes ${seconds(data.indexMs)}, vacuum analyze ${seconds(data.vacuumAnalyzeMs)}`,
    `table ${mib(data.tableBytes)}, indexes ${Object.entries(data.indexBytes)
      .map(([name, bytes]) => `${name} ${mib(bytes)}`)
      .join(', ')}`,
    '',
  ];
  const header = ['query', 'rows', 'runs', 'min ms', 'median ms', 'max ms'];
  const body = result.queries.map((q) => [
    q.name,
    String(q.rows),
    String(q.samplesMs.length),
    q.minMs.toFixed(1),
    q.medianMs.toFixed(1),
    q.maxMs.toFixed(1),
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...body.map((row) => row[i]?.length ?? 0)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ');
  lines.push(line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line), '');
  lines.push(
    `plan of activity-yesterday (${result.plan.method}): ` +
      (result.plan.usesPeriodIndex
        ? 'uses status_changes_period'
        : 'DOES NOT use status_changes_period') +
      (result.plan.seqScanOnStatusChanges ? ', SEQ SCAN on status_changes' : ', no seq scan'),
    `one-day report: ${result.oneDayReportMs.yesterday} ms (yesterday), ` +
      `${result.oneDayReportMs.older} ms (${result.periods.olderDaysAgo} days ago): ` +
      (result.oneDayReportMs.underOneSecond ? 'under one second' : 'NOT under one second'),
    `load average while measuring: ${result.environment.loadAverage.beforeMeasuring.join(' ')} ` +
      `before, ${result.environment.loadAverage.afterMeasuring.join(' ')} after ` +
      `(${result.environment.cpus} cpus)`,
  );
  return lines.join('\n');
}

export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

/** Writes the result as bench/results/reporting-<ISO 8601 basic timestamp>.json. */
export async function writeResult(result: ReportingBenchmarkResult, dir = RESULTS_DIR) {
  await fs.mkdir(dir, { recursive: true });
  const stamp = result.startedAt.replace(/[-:]/g, '').replace(/\.\d+/, '');
  const file = path.join(dir, `reporting-${stamp}.json`);
  await fs.writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

async function main() {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      users: { type: 'string' },
      days: { type: 'string' },
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run bench:reporting -- [--quick] [--rows N] [--users N] [--days N] [--runs N]\n' +
        '  --quick    200,000 rows (unless --rows says otherwise)\n' +
        '  --rows N   rows in the change log (default 10,000,000)\n' +
        '  --users N  default 10,000, fewer when that leaves under 100 changes a user\n' +
        '  --days N   days of history, ending now (default 90)\n' +
        '  --runs N   timed runs of each query (default 5)\n' +
        'DATABASE_URL: a server to create a scratch database on; unset, an embedded server.\n',
    );
    return;
  }
  const number = (value: string | undefined) =>
    value === undefined ? undefined : Number(value.replace(/[_,]/g, ''));
  const options: ReportingBenchmarkOptions = {
    rows: number(values.rows) ?? (values.quick ? 200_000 : 10_000_000),
    users: number(values.users),
    days: number(values.days),
    runs: number(values.runs),
  };
  try {
    const result = await runReportingBenchmark(options);
    process.stdout.write(`\n${formatResult(result)}\n`);
    process.stdout.write(`written to ${await writeResult(result)}\n`);
  } catch (error) {
    if (error instanceof BenchmarkAssertionError) {
      process.stdout.write(`\n${formatResult(error.result)}\n`);
      process.stdout.write(`written to ${await writeResult(error.result)}\n`);
    }
    process.stderr.write(`\nreporting benchmark failed: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}

const executedDirectly =
  process.argv[1] !== undefined &&
  import.meta.url ===
    pathToFileURL(await fs.realpath(process.argv[1]).catch(() => process.argv[1] ?? '')).href;
if (executedDirectly) await main();
