// What one client believes about every user, kept as a real client keeps it: each
// `online-users-list` replaces the whole view, `presence-change` frames between snapshots are
// applied on top, `presence-cleared` empties it, `resync` marks it stale until the next snapshot.
// To keep a thousand sockets affordable in one process, the latest list is kept as received and
// parsed only when the view is looked at; the changes since it are kept apart, in order. The
// view read then is exactly the one a client parsing every frame would hold.

const prefix = (event: string) => Buffer.from(`{"event":"${event}"`);
const LIST = prefix('online-users-list');
const COUNT = prefix('online-users-count');
const CHANGE = prefix('presence-change');
const CLEARED = prefix('presence-cleared');
const RESYNC = prefix('resync');
const ERROR = prefix('error');

const startsWith = (data: Buffer, head: Buffer) =>
  data.length >= head.length && data.compare(head, 0, head.length, 0, head.length) === 0;

/** Counts over every view, for the report. */
export interface FrameCounters {
  snapshots: number;
  changes: number;
  bytes: number;
  resyncs: number;
  /** A presence-change or clear whose position was not above the view's last one. */
  positionViolations: number;
  errors: Map<string, number>;
  /** When any view last received a presence-change or a clear (ms, Date.now()). */
  lastChangeAt: number;
}

export const newFrameCounters = (): FrameCounters => ({
  snapshots: 0,
  changes: 0,
  bytes: 0,
  resyncs: 0,
  positionViolations: 0,
  errors: new Map(),
  lastChangeAt: 0,
});

export type Statuses = Map<string, string>;

export class View {
  /** The latest `online-users-list` frame as received; undefined before the first one. */
  private list: Buffer | undefined;
  /** Changes received since that list, user to status (null: deleted), in arrival order. */
  private since = new Map<string, string | null>();
  /** Emptied by a clear: no list applies until the next snapshot. */
  private cleared = false;
  /** The last position received (change, clear or resync): what `?since=` resumes from. */
  position: number | undefined;
  /** A resync came and no snapshot yet: the view is known to be incomplete. */
  stale = false;

  constructor(private readonly counters: FrameCounters) {}

  get hasSnapshot(): boolean {
    return this.list !== undefined || this.cleared;
  }

  onFrame(data: Buffer): void {
    const counters = this.counters;
    counters.bytes += data.length;
    if (startsWith(data, LIST)) {
      counters.snapshots += 1;
      this.list = data;
      this.since.clear();
      this.cleared = false;
      this.stale = false;
    } else if (startsWith(data, COUNT)) {
      // Always follows its list; the list is what is compared.
    } else if (startsWith(data, CHANGE)) {
      const { data: change } = JSON.parse(data.toString()) as {
        data: { user: string; status: string | null; position: number };
      };
      this.advance(change.position);
      this.since.delete(change.user); // keeps arrival order: the last change of a user wins
      this.since.set(change.user, change.status);
    } else if (startsWith(data, CLEARED)) {
      const { data: cleared } = JSON.parse(data.toString()) as { data: { position: number } };
      this.advance(cleared.position);
      this.list = undefined;
      this.since.clear();
      this.cleared = true;
    } else if (startsWith(data, RESYNC)) {
      const { data: resync } = JSON.parse(data.toString()) as { data: { position: number } };
      counters.resyncs += 1;
      this.position = resync.position; // set, not raised: the database may be a new one
      this.stale = true;
    } else if (startsWith(data, ERROR)) {
      const { data: error } = JSON.parse(data.toString()) as { data: { code: string } };
      counters.errors.set(error.code, (counters.errors.get(error.code) ?? 0) + 1);
    }
  }

  private advance(position: number): void {
    const counters = this.counters;
    counters.changes += 1;
    counters.lastChangeAt = Date.now();
    if (this.position !== undefined && position <= this.position) {
      counters.positionViolations += 1;
    }
    this.position = position;
  }

  /** Every user's status as this client sees it now. */
  statuses(): Statuses {
    const statuses: Statuses = new Map();
    if (this.list && !this.cleared) {
      const { data } = JSON.parse(this.list.toString()) as {
        data: { user: string; status: string }[];
      };
      for (const { user, status } of data) statuses.set(user, status);
    }
    for (const [user, status] of this.since) {
      if (status === null) statuses.delete(user);
      else statuses.set(user, status);
    }
    return statuses;
  }
}

/** Users whose status differs between a view and the truth (at most `keep` of them named). */
export function compareStatuses(
  view: Statuses,
  truth: Statuses,
  keep = 3,
): { differing: number; examples: string[] } {
  let differing = 0;
  const examples: string[] = [];
  const note = (user: string, seen: string | undefined, real: string | undefined) => {
    differing += 1;
    if (examples.length < keep) examples.push(`${user}: view ${seen ?? '-'}, list ${real ?? '-'}`);
  };
  for (const [user, status] of truth) {
    const seen = view.get(user);
    if (seen !== status) note(user, seen, status);
  }
  for (const [user, status] of view) if (!truth.has(user)) note(user, status, undefined);
  return { differing, examples };
}
