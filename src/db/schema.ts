import type { ColumnType, Generated } from 'kysely';

// The Kysely view of migrations/*.sql. Keep it in step with them: a column added there is
// added here in the same commit.

export type PingStatus = 'available' | 'busy';
export type Status = PingStatus | 'away';

export interface SettingsTable {
  singleton: Generated<boolean>;
  away_timeout: ColumnType<string, string | undefined, string>;
  report_timezone: Generated<string>;
}

/** Log positions retention has deleted through: the greatest row is the horizon. */
export interface HistoryPrunedTable {
  pruned_through: number;
}

/**
 * A user's row, which is also their default session (a ping without `session`): status null when
 * it is not open. Named sessions are in presently.sessions (migrations/0007).
 */
export interface PresenceTable {
  user_id: string;
  /**
   * The default session's status. Null in the database when that session is not open: typed
   * non-null for select (as the seed's readers of this table read it), so code that reads it for
   * users with named sessions must check for null itself; writes may set null.
   */
  status: ColumnType<PingStatus, PingStatus | null, PingStatus | null>;
  last_ping: Date;
  /** The default session's own timeout; null: the away timeout. */
  timeout: ColumnType<string | null, string | null | undefined, string | null>;
  /** Set by the sweep once the default session has lapsed. */
  lapsed: Generated<boolean>;
  event_at: Generated<Date | null>;
  seen_at: Generated<Date | null>;
  override_status: Generated<'busy' | 'away' | null>;
  override_expires: Generated<Date | null>;
  message: Generated<string | null>;
  message_expires: Generated<Date | null>;
  logged_message: Generated<string | null>;
  /** What the change log last said about the user: set by triggers, never by the service. */
  logged_status: Generated<Status>;
  logged_at: Generated<Date>;
}

/** A user's named sessions: one row per live (or lapsed, not yet swept) device. */
export interface SessionsTable {
  user_id: string;
  session: string;
  status: PingStatus;
  last_ping: Date;
  timeout: string;
}

/** Each time a session was open (reports of devices): ended null while it lasts. */
export interface SessionIntervalsTable {
  id: Generated<number>;
  user_id: string;
  session: string;
  started: Date;
  ended: Date | null;
}

/** Each override (busy: do-not-disturb; away: appear-away), from set to ended or expired. */
export interface OverrideIntervalsTable {
  id: Generated<number>;
  user_id: string;
  status: 'busy' | 'away';
  started: Date;
  ended: Date | null;
}

/** Every live session, the default one named `default`. */
export interface LiveSessionsView {
  user_id: string;
  session: string;
  status: PingStatus;
  last_ping: Date;
  time: number;
}

/**
 * The change log, in commit order. A new user has no previous status, a removed user no status;
 * a row with no user marks the log cleared.
 */
export interface StatusChangesTable {
  position: Generated<number>;
  user_id: string | null;
  status: Status | null;
  previous: Status | null;
  changed_at: Date;
  /**
   * The end of the interval the row starts: the user's next change (null while it lasts).
   * Rows that start no interval end where they start.
   */
  ended_at: Date | null;
  /** The user's status message as of this change (null: none). */
  message: string | null;
}

/** Effective status per user: derived in SQL from the last ping, the timeout and now(). */
export interface UserStatusView {
  user_id: string;
  status: Status;
  last_ping: Date;
  /** Unix time of the last ping of any session, whole seconds. */
  time: number;
  /** The status message while one is set. */
  message: string | null;
}

export interface StatusCountsView {
  available: number;
  busy: number;
  away: number;
}

export interface MigrationsTable {
  id: number;
  name: string;
  checksum: string;
  applied_at: Generated<Date>;
}

export interface Database {
  'presently.settings': SettingsTable;
  'presently.presence': PresenceTable;
  'presently.user_status': UserStatusView;
  'presently.status_counts': StatusCountsView;
  'presently.sessions': SessionsTable;
  'presently.live_sessions': LiveSessionsView;
  'presently.session_intervals': SessionIntervalsTable;
  'presently.override_intervals': OverrideIntervalsTable;
  'presently.status_changes': StatusChangesTable;
  'presently.history_pruned': HistoryPrunedTable;
  'presently.migrations': MigrationsTable;
}
