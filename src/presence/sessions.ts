import { type Kysely, sql } from 'kysely';
import { z } from 'zod';
import type { Database, PingStatus, Status } from '../db/schema.js';
import { AppError } from '../errors.js';
import type { Message, Override } from './overrides.js';
import { DEFAULT_SESSION, sessionName, userId } from './validation.js';

// A user's sessions, override and message: the writes (each one statement or function, the
// user's row held, so triggers judge and log in SQL) and the detailed status read. Every status
// here comes from presently.user_status and presently.live_sessions: none is decided in
// TypeScript.

export interface SessionPresence {
  session: string;
  status: PingStatus;
  time: number;
}

export interface UserState {
  user: string;
  status: Status;
  time: number;
  /**
   * The live sessions. Left out for a user who has only ever used the default session (the
   * seed's clients), whose answer so stays exactly the seed's.
   */
  sessions?: SessionPresence[];
  override?: { status: 'busy' | 'away'; expires: string | null };
  message?: string;
  message_expires?: string | null;
}

export const unknownUser = (user: string) =>
  new AppError('user_not_found', 404, `no user ${JSON.stringify(user)}`);

/** One user's effective status and live sessions, or undefined for an unknown user. */
export async function readUserState(
  db: Kysely<Database>,
  user: string,
): Promise<UserState | undefined> {
  const { rows } = await sql<{
    status: Status;
    time: number;
    message: string | null;
    override_status: 'busy' | 'away' | null;
    override_expires: Date | null;
    message_expires: Date | null;
    sessions: SessionPresence[];
    named: boolean;
  }>`
    select u.status, u."time", u.message,
           -- An override shows while it lasts (the sweep clears it within a second after).
           case when p.override_expires is null or p.override_expires > now()
                then p.override_status end as override_status,
           p.override_expires, p.message_expires,
           coalesce((select json_agg(json_build_object('session', l.session, 'status', l.status,
                                                       'time', l."time") order by l.session)
                     from presently.live_sessions l where l.user_id = u.user_id), '[]') as sessions,
           exists (select from presently.sessions n where n.user_id = u.user_id) as named
    from presently.user_status u
    join presently.presence p using (user_id)
    where u.user_id = ${user}
  `.execute(db);
  const row = rows[0];
  if (!row) return undefined;
  const state: UserState = { user, status: row.status, time: row.time };
  if (row.named) state.sessions = row.sessions;
  if (row.override_status) {
    state.override = {
      status: row.override_status,
      expires: row.override_expires?.toISOString() ?? null,
    };
  }
  if (row.message !== null) {
    state.message = row.message;
    state.message_expires = row.message_expires?.toISOString() ?? null;
  }
  return state;
}

/**
 * Ends a session at once (`default`: the default session); with no other live session the user
 * is away at once. 404 for an unknown user or a session that is not live.
 */
export async function endSession(
  db: Kysely<Database>,
  user: string,
  session: string | undefined,
): Promise<void> {
  const { rows } = await sql<{ outcome: string }>`
    select presently.end_session(${user}, ${session ?? null}::text) as outcome
  `.execute(db);
  const outcome = rows[0]?.outcome;
  if (outcome === 'user_not_found') throw unknownUser(user);
  if (outcome === 'session_not_found') {
    const name = JSON.stringify(session ?? DEFAULT_SESSION);
    throw new AppError(
      'session_not_found',
      404,
      `user ${JSON.stringify(user)} has no live session ${name}`,
    );
  }
}

/** Sets (or, with null, ends) a user's override. 404 for an unknown user. */
export async function setOverride(
  db: Kysely<Database>,
  user: string,
  override: Override | null,
): Promise<void> {
  const result = await db
    .updateTable('presently.presence')
    .set({ override_status: override?.status ?? null, override_expires: override?.expires ?? null })
    .where('user_id', '=', user)
    .executeTakeFirst();
  if (result.numUpdatedRows === 0n) throw unknownUser(user);
}

/** Sets (or, with null, clears) a user's status message. 404 for an unknown user. */
export async function setMessage(
  db: Kysely<Database>,
  user: string,
  message: Message | null,
): Promise<void> {
  const result = await db
    .updateTable('presently.presence')
    .set({ message: message?.text ?? null, message_expires: message?.expires ?? null })
    .where('user_id', '=', user)
    .executeTakeFirst();
  if (result.numUpdatedRows === 0n) throw unknownUser(user);
}

const leaveSchema = z.object(
  { id: userId, session: sessionName.optional() },
  { error: 'the data must be a JSON object {"id": ..., "session": ...}' },
);

export interface Leave {
  id: string;
  /** undefined: the default session. */
  session: string | undefined;
}

/** A socket's `user-leave` data, `{"id", "session"}` (no session, or `default`: the default). */
export function parseLeave(input: unknown): Leave {
  const parsed = leaveSchema.safeParse(input);
  if (!parsed.success) {
    const fields = new Set(parsed.error.issues.map((issue) => String(issue.path[0])));
    const [only] = fields;
    const code =
      fields.size === 1 && only === 'id'
        ? 'invalid_id'
        : fields.size === 1 && only === 'session'
          ? 'invalid_session'
          : 'invalid_body';
    throw new AppError(
      code,
      400,
      [...new Set(parsed.error.issues.map((i) => i.message))].join('; '),
    );
  }
  const { id, session } = parsed.data;
  return { id, session: session === DEFAULT_SESSION ? undefined : session };
}

/** `user-leave`: ends the session as `DELETE /users/{id}/sessions/{session}` does. */
export async function leaveSession(db: Kysely<Database>, leave: Leave): Promise<void> {
  await endSession(db, leave.id, leave.session);
}
