import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import type { Keys } from '../../keys.js';
import type { PingWriter } from '../../presence/ping-writer.js';

export interface RouteDeps {
  db: Kysely<Database>;
  keys: Keys;
  pings: PingWriter;
}
