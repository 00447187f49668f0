import type {
  ConnectionInfo,
  OnlineUser,
  PresenceSocket,
  PresenceState,
  StatusFilter,
} from 'presently-client/socket';
import { type Api, KeyRefused } from './api.js';
import { onlineChart, timelineChart } from './charts.js';
import { detailsOf } from './details.js';
import { createDevices, type Devices } from './devices.js';
import { ago, row } from './rows.js';

/**
 * Rows on a page. The page holds one page of the list (read by REST, in id order) and follows
 * exactly those users over its socket: a million users cost the page no more than fifty.
 */
export const PAGE_ROWS = 50;
/** Typing waits this long before searching, so that a word is one request, not one a key. */
const SEARCH_DELAY_MS = 200;
/** The chart of the last day is read again this often (it changes by the hour). */
const CHART_REFRESH_MS = 60_000;
const DAY_MS = 86_400_000;
/**
 * The opened user's devices are read again this often: a session that starts, changes or ends
 * without changing the merged status is announced by no socket frame.
 */
const DETAILS_REFRESH_MS = 5_000;

export interface LiveSession {
  state: PresenceState;
  socket: PresenceSocket;
  api: Api;
}

export interface View {
  /** Asks for a key, saying why when there is a reason. */
  askKey(message?: string): void;
  onKey(listener: (key: string) => void): void;
  onForget(listener: () => void): void;
  /** Called when a REST call is refused for its key. */
  onKeyRefused(listener: () => void): void;
  /** Shows this session, and follows it, until the next call. */
  showLive(session: LiveSession): void;
  showConnection(info: ConnectionInfo | undefined): void;
}

/** The page: everything it shows, drawn from the session it is given. */
export function createView(document: Document): View {
  const element = <T extends HTMLElement>(id: string) => {
    const found = document.getElementById(id);
    if (!found) throw new Error(`the page has no #${id}`);
    return found as T;
  };
  const keyForm = element<HTMLFormElement>('key-form');
  const keyInput = element<HTMLInputElement>('key');
  const keyError = element('key-error');
  const live = element('live');
  const forget = element<HTMLButtonElement>('forget');
  const connection = element('connection');
  const rows = element<HTMLTableSectionElement>('users');
  const note = element('note');
  const search = element<HTMLInputElement>('search');
  const previousButton = element<HTMLButtonElement>('previous');
  const nextButton = element<HTMLButtonElement>('next');
  const online = element('online');
  const day = element('day');
  const dayTitle = element('day-title');
  const dayChart = element('day-chart');
  const dayDevices = element('day-devices');
  const counts = {
    available: element('count-available'),
    busy: element('count-busy'),
    away: element('count-away'),
  };
  const filterButtons = [...document.querySelectorAll<HTMLButtonElement>('[data-filter]')];

  let session: LiveSession | undefined;
  let devices: Devices | undefined;
  let stopSession: (() => void) | undefined;
  let keyRefused: () => void = () => {};
  let drawScheduled = false;

  // The page of the list on screen: its rows as read, the cursors that led to it (for
  // "previous"), and the cursor of the next one.
  let filter: StatusFilter = 'all';
  let prefix = '';
  let cursors: (string | undefined)[] = [undefined];
  let page: OnlineUser[] = [];
  let next: string | null = null;
  let loading = 0;
  let failure = '';
  let selected: string | undefined;

  const failed = (error: unknown, what: string) => {
    if (error instanceof KeyRefused) keyRefused();
    else failure = `Could not read ${what}: the service did not answer.`;
    scheduleRender();
  };

  /** Reads the page `cursors` points at, then follows its users. A newer read wins. */
  const loadPage = async () => {
    const current = session;
    if (!current) return;
    const ticket = ++loading;
    try {
      const answer = await current.api.listPage(filter, {
        limit: PAGE_ROWS,
        cursor: cursors.at(-1),
        prefix: prefix === '' ? undefined : prefix,
      });
      if (ticket !== loading || session !== current) return;
      page = answer.data;
      next = answer.next;
      failure = '';
      current.socket.subscribe(page.map((row) => row.user));
      track();
    } catch (error) {
      if (ticket !== loading) return;
      if (!(error instanceof KeyRefused) && /answered 400/.test(String(error))) {
        page = [];
        next = null;
        failure = 'That is not the start of any valid id.';
      } else failed(error, 'the list');
    }
    scheduleRender();
  };

  /** The devices to know: the page's rows and the user opened. */
  const track = () => {
    const users = page.map((read) => read.user);
    devices?.track(selected === undefined ? users : [...users, selected]);
  };

  const loadChart = async () => {
    const current = session;
    if (!current) return;
    try {
      const hours = await current.api.onlineHours();
      if (session === current) online.replaceChildren(onlineChart(hours));
    } catch (error) {
      failed(error, 'the chart');
    }
  };

  /** The selected user's last day, drawn again at each of their changes. */
  const loadDay = async (user: string) => {
    const current = session;
    if (!current) return;
    const to = new Date();
    const from = new Date(to.getTime() - DAY_MS);
    try {
      const intervals = await current.api.history(user, from, to);
      if (session !== current || selected !== user) return;
      day.hidden = false;
      dayTitle.textContent = `${user}: the last 24 hours`;
      dayChart.replaceChildren(timelineChart(intervals, from, to));
      dayChart.dataset.user = user;
    } catch (error) {
      failed(error, `the day of ${user}`);
    }
  };

  const render = () => {
    drawScheduled = false;
    if (!session) return;
    const { state } = session;
    for (const status of ['available', 'busy', 'away'] as const) {
      counts[status].textContent = String(state.counts[status]);
    }
    // The page's users as read, or as the socket has said since (status, time and message:
    // a message the state does not hold is no longer set).
    rows.replaceChildren(
      ...page.map((read) => {
        const now = state.users.get(read.user);
        const shown = now ? { user: read.user, ...now } : read;
        return row(shown, read.user === selected, devices?.get(read.user));
      }),
    );
    if (selected !== undefined)
      dayDevices.replaceChildren(...detailsOf(devices?.get(selected), ago));
    const first = (cursors.length - 1) * PAGE_ROWS + 1;
    const searched = prefix === '' ? '' : ` whose id starts with “${prefix}”`;
    note.textContent =
      failure ||
      (page.length === 0
        ? `No users${searched}.`
        : `Users ${first} to ${first + page.length - 1}${searched}, in id order.`);
    previousButton.disabled = cursors.length <= 1;
    nextButton.disabled = next === null;
  };
  // Changes can come by the hundred: the page is drawn at most once a frame.
  const scheduleRender = () => {
    if (drawScheduled) return;
    drawScheduled = true;
    requestAnimationFrame(render);
  };

  const restart = () => {
    cursors = [undefined];
    void loadPage();
  };
  for (const button of filterButtons) {
    button.addEventListener('click', () => {
      filter = button.dataset.filter as StatusFilter;
      for (const other of filterButtons)
        other.setAttribute('aria-pressed', String(other === button));
      restart();
    });
  }
  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      if (search.value === prefix) return;
      prefix = search.value;
      restart();
    }, SEARCH_DELAY_MS);
  });
  nextButton.addEventListener('click', () => {
    if (next === null) return;
    cursors.push(next);
    void loadPage();
  });
  previousButton.addEventListener('click', () => {
    if (cursors.length <= 1) return;
    cursors.pop();
    void loadPage();
  });
  rows.addEventListener('click', (event) => {
    const tr = (event.target as Element).closest<HTMLElement>('tr[data-user]');
    const user = tr?.dataset.user;
    if (user === undefined) return;
    selected = user;
    track();
    // Opened: read at once, whatever the page's read said a moment ago.
    devices?.refresh(user);
    scheduleRender();
    void loadDay(user);
  });
  // "12 s ago" moves on its own: only those cells are rewritten, every second.
  setInterval(() => {
    for (const cell of rows.querySelectorAll<HTMLElement>('td.seen')) {
      cell.textContent = ago(Number(cell.dataset.time));
    }
  }, 1000);

  return {
    askKey(message = '') {
      stopSession?.();
      session = undefined;
      live.hidden = true;
      forget.hidden = true;
      keyForm.hidden = false;
      keyError.textContent = message;
      keyInput.value = '';
      keyInput.focus();
    },
    onKey(listener) {
      keyForm.addEventListener('submit', (event) => {
        event.preventDefault();
        const key = keyInput.value.trim();
        if (key) listener(key);
      });
    },
    onForget(listener) {
      forget.addEventListener('click', listener);
    },
    onKeyRefused(listener) {
      keyRefused = listener;
    },
    showLive(next) {
      stopSession?.();
      session = next;
      selected = undefined;
      day.hidden = true;
      const current = createDevices(next.api, scheduleRender, (error) =>
        failed(error, 'a user’s devices'),
      );
      devices = current;
      const stops = [
        next.state.onUpdate(scheduleRender),
        next.socket.on('change', (change) => {
          current.refresh(change.user);
          if (change.user === selected) void loadDay(change.user);
        }),
        // After a resync the socket's state starts over: read the page again.
        next.socket.on('resync', () => void loadPage()),
      ];
      const chartTimer = setInterval(loadChart, CHART_REFRESH_MS);
      const detailsTimer = setInterval(() => {
        if (selected !== undefined) current.refresh(selected);
      }, DETAILS_REFRESH_MS);
      stopSession = () => {
        clearInterval(chartTimer);
        clearInterval(detailsTimer);
        current.stop();
        for (const stop of stops) stop();
      };
      keyForm.hidden = true;
      live.hidden = false;
      forget.hidden = false;
      restart();
      void loadChart();
      scheduleRender();
    },
    showConnection(info) {
      connection.dataset.state = info?.state ?? 'idle';
      connection.textContent = describe(info);
    },
  };
}

function describe(info: ConnectionInfo | undefined): string {
  switch (info?.state) {
    case undefined:
      return 'not connected';
    case 'connecting':
      return info.attempt === 0 ? 'connecting…' : `reconnecting (attempt ${info.attempt})…`;
    case 'open':
      return 'live';
    case 'waiting':
      return `disconnected; retrying in ${Math.ceil((info.retryInMs ?? 0) / 1000)} s`;
    case 'closed':
      return 'not connected';
  }
}
