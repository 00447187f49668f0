import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import type { Keys } from '../../keys.js';

export interface RouteDeps {
  db: Kysely<Database>;
  keys: Keys;
}
