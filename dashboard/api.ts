import type { OnlineUser, StatusFilter } from 'presently-client/socket';
import type { OnlineHour, StatusInterval } from './charts.js';

// The REST calls the dashboard makes, with the key as a bearer token. The dashboard is browser
// code, checked without Node's types, so it does not take the typed REST client (whose types
// are the server's own): these few shapes are written out here, as the API documents them.

export class KeyRefused extends Error {}
class NotFound extends Error {}

/** One of a user's live sessions (devices), as `GET /users/{id}/status` lists them. */
export interface SessionPresence {
  session: string;
  status: 'available' | 'busy';
  time: number;
}

/**
 * `GET /users/{id}/status`: a list item's fields, and the user's sessions (left out for a user
 * who never named one), override and message expiry, each only while set.
 */
export interface UserState extends OnlineUser {
  sessions?: SessionPresence[];
  override?: { status: 'busy' | 'away'; expires: string | null };
  message_expires?: string | null;
}

export interface ListPage {
  data: OnlineUser[];
  next: string | null;
}

export interface Api {
  /** A page of the list in id order, from `cursor`, of the users whose id starts with `prefix`. */
  listPage(
    filter: StatusFilter,
    options: { limit: number; cursor?: string | undefined; prefix?: string | undefined },
  ): Promise<ListPage>;
  /** One user now, with sessions, override and message; undefined for a user not known. */
  userState(user: string): Promise<UserState | undefined>;
  /** Online users per hour over the last day. */
  onlineHours(): Promise<OnlineHour[]>;
  /** A user's intervals over [from, to): every page of them. */
  history(user: string, from: Date, to: Date): Promise<StatusInterval[]>;
}

export function createApi(key: string): Api {
  const get = async <T>(path: string, query: Record<string, string | undefined>): Promise<T> => {
    const url = new URL(path, location.origin);
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(name, value);
    }
    const response = await fetch(url, { headers: { Authorization: `Bearer ${key}` } });
    if (response.status === 401) throw new KeyRefused('the key was refused');
    if (response.status === 404) throw new NotFound(`${path} answered 404`);
    if (!response.ok) throw new Error(`${path} answered ${response.status}`);
    return (await response.json()) as T;
  };
  return {
    listPage: (filter, { limit, cursor, prefix }) =>
      get<ListPage>(`/users/list/${filter}`, { limit: String(limit), cursor, prefix }),
    async userState(user) {
      try {
        return (await get<{ data: UserState }>(`/users/${encodeURIComponent(user)}/status`, {}))
          .data;
      } catch (error) {
        // A user deleted meanwhile (cleared, or removed with SQL) has nothing to show.
        if (error instanceof NotFound) return undefined;
        throw error;
      }
    },
    onlineHours: async () => (await get<{ data: OnlineHour[] }>('/reports/online', {})).data,
    async history(user, from, to) {
      const intervals: StatusInterval[] = [];
      let cursor: string | undefined;
      // A day holds a few hundred intervals at most; ten pages of a thousand is a generous cap.
      for (let pages = 0; pages < 10; pages += 1) {
        const page = await get<{ data: StatusInterval[]; next: string | null }>(
          `/users/${encodeURIComponent(user)}/history`,
          { from: from.toISOString(), to: to.toISOString(), limit: '1000', cursor },
        );
        intervals.push(...page.data);
        if (page.next === null) break;
        cursor = page.next;
      }
      return intervals;
    },
  };
}
