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

export interface PresenceTable {
  user_id: string;
  status: PingStatus;
  last_ping: Date;
  /** What the change log last said about the user: set by triggers, never by the service. */
  logged_status: Generated<Status>;
  logged_at: Generated<Date>;
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
}

/** Effective status per user: derived in SQL from the last ping, the timeout and now(). */
export interface UserStatusView {
  user_id: string;
  status: Status;
  last_ping: Date;
  /** Unix time of the last ping, whole seconds. */
  time: number;
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
  'presently.status_changes': StatusChangesTable;
  'presently.history_pruned': HistoryPrunedTable;
  'presently.migrations': MigrationsTable;
}
