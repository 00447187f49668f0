import type pg from 'pg';

// A change log of many users over many days, written straight into presently.status_changes with
// set-based SQL (the triggers that write it in production would take hours for ten million rows).
//
// Each user's history is split into equal slots, one change per slot, each change at a
// pseudo-random moment of its slot (a hash of user and slot), so a change's time, status and end
// can all be computed from (user, slot) alone, without window functions or sorting:
//   changed_at(u, i) = from + (i + 0.95 * jitter(u, i)) * slot(u), increasing per user;
//   ended_at(u, i)   = changed_at(u, i + 1), null for the user's last change (still open);
//   status(u, i)     = available on every other slot, busy or away (60/40) in between, so two
//                      consecutive changes never have the same status; previous = status(u, i-1),
//                      null for the user's first change (a new user).
// Intervals last from 5% to 195% of a slot (a slot is about two hours with the defaults).
// Rows are written slot after slot, so positions and the heap follow time, as in a real log.

export interface GenerateOptions {
  rows: number;
  users: number;
  /** The period the history covers, ending at `to`. */
  days: number;
  to: Date;
  /** Rows per INSERT statement, about. */
  chunkRows?: number;
  log?: (line: string) => void;
}

export interface GenerateResult {
  rows: number;
  users: number;
  from: string;
  to: string;
  /** Inserting the rows. */
  insertMs: number;
  /** Building the secondary indexes again (dropped for the load). */
  indexMs: number;
  /** VACUUM ANALYZE. */
  vacuumAnalyzeMs: number;
  /** All of it, from the first statement to the end of VACUUM ANALYZE. */
  totalMs: number;
  indexes: { name: string; definition: string; buildMs: number }[];
  /** Triggers on presently.status_changes that were disabled while the rows were inserted. */
  triggersBypassed: string[];
}

const SEED = 20_240_601;

/** The id the generator gives user number `n` (1-based) of `users`: `user-00042`. */
export function userId(n: number, users: number): string {
  return `user-${String(n).padStart(idWidth(users), '0')}`;
}

function idWidth(users: number): number {
  return Math.max(5, String(users).length);
}

/** Fills presently.status_changes, which must be empty. Uses the client's session settings. */
export async function generateChangeLog(
  client: pg.Client,
  options: GenerateOptions,
): Promise<GenerateResult> {
  const log = options.log ?? (() => {});
  const users = Math.max(1, Math.min(options.users, options.rows));
  const perUser = Math.floor(options.rows / users);
  const extra = options.rows - perUser * users; // users 1..extra get one change more
  const slots = perUser + (extra > 0 ? 1 : 0);
  const to = new Date(Math.floor(options.to.getTime() / 1000) * 1000);
  const from = new Date(to.getTime() - options.days * 86_400_000);
  const started = performance.now();

  const { rows: existing } = await client.query<{ any: boolean }>(
    'select exists (select from presently.status_changes) as any',
  );
  if (existing[0]?.any) throw new Error('presently.status_changes is not empty');

  await client.query('set synchronous_commit = off');

  // The rows are the log as the triggers on presence would have written it; triggers on the log
  // itself (derived bookkeeping, row by row) are not run for them. They are enabled again after
  // the load, so the database behaves as migrated from then on.
  const { rows: triggers } = await client.query<{ name: string }>(`
    select quote_ident(tgname) as name from pg_trigger
    where tgrelid = 'presently.status_changes'::regclass and not tgisinternal and tgenabled <> 'D'
    order by 1`);
  if (triggers.length > 0) {
    log(`  triggers on status_changes off for the load: ${triggers.map((t) => t.name).join(', ')}`);
    await client.query('alter table presently.status_changes disable trigger user');
  }

  // The secondary indexes are dropped for the load and built again from their own definitions
  // (those of the migration), which is several times faster than maintaining them row by row.
  // The primary key stays: positions are written in increasing order, so it only appends.
  const { rows: indexes } = await client.query<{ name: string; definition: string }>(`
    select i.indexrelid::regclass::text as name, pg_get_indexdef(i.indexrelid) as definition
    from pg_index i
    where i.indrelid = 'presently.status_changes'::regclass
      and not exists (select from pg_constraint c where c.conindid = i.indexrelid)
    order by 1`);
  log(`  indexes dropped for the load: ${indexes.map((index) => index.name).join(', ')}`);
  for (const index of indexes) await client.query(`drop index ${index.name}`);

  // Everything per (u, i) in one place, in SQL; `slot` is the user's slot length in seconds.
  const n = `(${perUser} + (u <= ${extra})::int)`;
  const slot = `(${options.days * 86_400}::float8 / ${n})`;
  const hash = (i: string) => `hashint8extended(u::int8 * 16777216 + (${i}), ${SEED})`;
  const at = (i: string) =>
    `to_timestamp(${from.getTime() / 1000}::float8 + ((${i}) + 0.95 * ((${hash(i)} & 1048575) / 1048576.0)::float8) * ${slot})`;
  const status = (i: string) =>
    `case when (u + (${i})) % 2 = 0 then 'available' when ((${hash(i)} >> 20) & 1023) < 614 then 'busy' else 'away' end`;

  const insert = `
    insert into presently.status_changes
      (position, user_id, status, previous, changed_at, ended_at)
    overriding system value
    select i::int8 * ${users} + u,
           'user-' || lpad(u::text, ${idWidth(users)}, '0'),
           ${status('i')},
           case when i > 0 then ${status('i - 1')} end,
           ${at('i')},
           case when i + 1 < ${n} then ${at('i + 1')} end
    from generate_series($1::int, $2::int - 1) i
    cross join generate_series(1, ${users}) u
    where i < ${n}`;

  const slotsPerChunk = Math.max(1, Math.floor((options.chunkRows ?? 500_000) / users));
  const insertStarted = performance.now();
  let written = 0;
  try {
    for (let first = 0; first < slots; first += slotsPerChunk) {
      const last = Math.min(slots, first + slotsPerChunk);
      const result = await client.query(insert, [first, last]);
      written += result.rowCount ?? 0;
      const seconds = (performance.now() - insertStarted) / 1000;
      log(
        `  ${written.toLocaleString('en')} / ${options.rows.toLocaleString('en')} rows` +
          ` (${Math.round((100 * written) / options.rows)}%, ${seconds.toFixed(1)} s)`,
      );
    }
  } finally {
    for (const trigger of triggers) {
      await client.query(`alter table presently.status_changes enable trigger ${trigger.name}`);
    }
  }
  const insertMs = performance.now() - insertStarted;
  if (written !== options.rows) throw new Error(`wrote ${written} rows, not ${options.rows}`);
  // Rows written later by the service (none here) must come after these.
  await client.query(`
    select setval(pg_get_serial_sequence('presently.status_changes', 'position'),
                  (select max(position) from presently.status_changes))`);

  const indexStarted = performance.now();
  const built: GenerateResult['indexes'] = [];
  for (const index of indexes) {
    const indexOne = performance.now();
    await client.query(index.definition);
    built.push({ ...index, buildMs: performance.now() - indexOne });
    log(`  index ${index.name} built (${((performance.now() - indexOne) / 1000).toFixed(1)} s)`);
  }
  const indexMs = performance.now() - indexStarted;

  // After the indexes: ANALYZE also gathers the statistics of the indexed expression
  // tstzrange(changed_at, ended_at), which the planner uses to estimate `&&`.
  const vacuumStarted = performance.now();
  await client.query('vacuum analyze presently.status_changes');
  const vacuumAnalyzeMs = performance.now() - vacuumStarted;
  log(`  vacuum analyze (${(vacuumAnalyzeMs / 1000).toFixed(1)} s)`);

  return {
    rows: written,
    users,
    from: from.toISOString(),
    to: to.toISOString(),
    insertMs,
    indexMs,
    vacuumAnalyzeMs,
    totalMs: performance.now() - started,
    indexes: built,
    triggersBypassed: triggers.map((trigger) => trigger.name),
  };
}

/**
 * Checks a few users' histories against the rules of the log: each change ends where the next
 * begins, the last one is open, statuses alternate and `previous` follows. Answers the problems.
 */
export async function checkChangeLog(client: pg.Client, sampleUsers: string[]): Promise<string[]> {
  const { rows } = await client.query<{ user_id: string; problem: string }>(
    `
    with h as (
      select user_id, position, status, previous, changed_at, ended_at,
             lag(status) over w as prior_status,
             lead(changed_at) over w as next_at,
             row_number() over w = count(*) over (partition by user_id) as last
      from presently.status_changes
      where user_id = any($1::text[])
      window w as (partition by user_id order by position)
    )
    select user_id, case
        when ended_at is distinct from next_at then 'ended_at is not the next change'
        when ended_at is null and not last then 'an open interval before the last change'
        when previous is distinct from prior_status then 'previous is not the prior status'
        when status = previous then 'a change to the same status'
        when ended_at <= changed_at then 'an empty interval'
      end as problem
    from h
    where ended_at is distinct from next_at
       or previous is distinct from prior_status
       or status = previous
       or ended_at <= changed_at
    limit 10`,
    [sampleUsers],
  );
  return rows.map((row) => `${row.user_id}: ${row.problem}`);
}
