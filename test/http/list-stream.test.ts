import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { KyselyPlugin } from 'kysely';
import { sql } from 'kysely';
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AppDeps } from '../../src/http/app.js';
import { listUsers, setAwayTimeout } from '../../src/presence/repository.js';
import { useTestDatabase } from '../helpers/database.js';
import { KEYS, testApp } from '../helpers/http.js';

// GET /users/list/{status} without a limit: the seed's whole list, streamed from PostgreSQL in
// chunks whose JSON PostgreSQL writes. It must read exactly as the list built in one piece.

const database = useTestDatabase();

async function fetchList(status: string, overrides: Partial<AppDeps> = {}) {
  const app = testApp(database.db, overrides);
  return app.request(`/users/list/${status}?key=${KEYS.access}`);
}

/** The list as the service built it before streaming: one query, serialised by JavaScript. */
async function builtInOnePiece(status: 'all' | 'available' | 'busy' | 'away') {
  return JSON.stringify({ data: await listUsers(database.db, status) });
}

beforeEach(async () => {
  await sql`truncate presently.presence`.execute(database.db);
});

describe('the streamed whole list', () => {
  it('is byte for byte the list built in one piece, odd ids included, across chunks', async () => {
    // Ids a validated ping cannot store but the table can (rows from before the rules, or
    // written with SQL): the JSON must escape them exactly as JavaScript does.
    const odd = ['"', '\\', '/', '\t', '\u0001', '\u007f', '\u2028', 'é', '😀', '</script>', '{}'];
    // Every ping is far from the away timeout (a day here), so no user turns away between the
    // streamed read and the one-piece read however long the comparison takes.
    await setAwayTimeout(database.db, 86_400);
    await sql`
      insert into presently.presence (user_id, status, last_ping)
      select (${odd}::text[])[g % ${odd.length} + 1] || g::text || (${odd}::text[])[g % 5 + 1],
             case when g % 3 = 0 then 'busy' else 'available' end,
             now() - make_interval(secs => g * 7.3 + case when g % 4 = 0 then 172800 else 0 end)
      from generate_series(1, 3001) g
    `.execute(database.db);
    for (const listChunkRows of [7, 1_000, 3_001, 10_000]) {
      for (const status of ['all', 'available', 'busy', 'away'] as const) {
        const answer = await fetchList(status, { listChunkRows });
        expect(answer.status).toBe(200);
        expect(await answer.text(), `${status}, chunks of ${listChunkRows}`).toBe(
          await builtInOnePiece(status),
        );
      }
    }
  });

  it('answers JSON, and {"data":[]} when nobody is there', async () => {
    const answer = await fetchList('all');
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await answer.text()).toBe('{"data":[]}');
  });

  it('arrives complete for 30,000 users', async () => {
    await sql`
      insert into presently.presence (user_id, status, last_ping)
      select 'user-' || g, 'busy', now() from generate_series(1, 30000) g
    `.execute(database.db);
    const answer = await fetchList('all');
    const body = JSON.parse(await answer.text());
    expect(body.data).toHaveLength(30_000);
    expect(new Set(body.data.map((row: { user: string }) => row.user)).size).toBe(30_000);
    expect(body.data).toEqual(await listUsers(database.db, 'all'));
  });

  it('fails the body, rather than ending it as valid JSON, when a later chunk fails', async () => {
    await sql`
      insert into presently.presence (user_id, status, last_ping)
      select 'user-' || g, 'busy', now() from generate_series(1, 50) g
    `.execute(database.db);
    const logged: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(line) });
    const answer = await fetchList('all', {
      db: database.db.withPlugin(failFrom(2)),
      listChunkRows: 10,
      logger,
    });
    expect(answer.status).toBe(200);
    await expect(answer.text()).rejects.toThrow();
    expect(logged.map((line) => JSON.parse(line))).toContainEqual(
      expect.objectContaining({ level: 50, msg: expect.stringMatching(/list/) }),
    );
  });

  it('breaks the transfer over HTTP too: the client never gets a clean end', async () => {
    await sql`
      insert into presently.presence (user_id, status, last_ping)
      select 'user-' || g, 'busy', now() from generate_series(1, 50) g
    `.execute(database.db);
    const app = testApp(database.db, {
      db: database.db.withPlugin(failFrom(3)),
      listChunkRows: 10,
    });
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const answer = await fetch(`http://127.0.0.1:${port}/users/list/all?key=${KEYS.access}`);
      expect(answer.status).toBe(200);
      await expect(answer.text()).rejects.toThrow();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

/** Fails every query from the `nth` on, as a database that went away would. */
function failFrom(nth: number): KyselyPlugin {
  let queries = 0;
  return {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      queries += 1;
      if (queries >= nth) throw new Error('connection terminated unexpectedly');
      return args.result;
    },
  };
}
