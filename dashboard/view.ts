import type { PresenceState } from '../src/client/presence-state.js';
import type { StatusFilter } from '../src/client/protocol.js';
import type { ConnectionInfo } from '../src/client/socket-client.js';

/** More rows than this would slow the page down and help nobody: the rest are counted. */
const MAX_ROWS = 500;

export interface View {
  /** Asks for a key, saying why when there is a reason. */
  askKey(message?: string): void;
  onKey(listener: (key: string) => void): void;
  onForget(listener: () => void): void;
  /** Shows this state, and again whenever it changes, until the next call. */
  showLive(state: PresenceState): void;
  showConnection(info: ConnectionInfo | undefined): void;
}

/** The page: everything it shows, drawn from the state it is given. */
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
  const counts = {
    available: element('count-available'),
    busy: element('count-busy'),
    away: element('count-away'),
  };
  const filterButtons = [...document.querySelectorAll<HTMLButtonElement>('[data-filter]')];

  let filter: StatusFilter = 'all';
  let state: PresenceState | undefined;
  let stopFollowing: (() => void) | undefined;
  let drawScheduled = false;

  const render = () => {
    drawScheduled = false;
    if (!state) return;
    for (const status of ['available', 'busy', 'away'] as const) {
      counts[status].textContent = String(state.counts[status]);
    }
    const shown = state.list(filter);
    rows.replaceChildren(...shown.slice(0, MAX_ROWS).map(row));
    note.textContent =
      shown.length > MAX_ROWS
        ? `Showing the first ${MAX_ROWS} of ${shown.length} users.`
        : shown.length === 0
          ? state.complete
            ? 'No users to show.'
            : 'Waiting for the list…'
          : '';
  };
  // Changes can come by the hundred: the page is drawn at most once a frame.
  const scheduleRender = () => {
    if (drawScheduled) return;
    drawScheduled = true;
    requestAnimationFrame(render);
  };

  for (const button of filterButtons) {
    button.addEventListener('click', () => {
      filter = button.dataset.filter as StatusFilter;
      for (const other of filterButtons)
        other.setAttribute('aria-pressed', String(other === button));
      scheduleRender();
    });
  }
  // "12 s ago" moves on its own: only those cells are rewritten, every second.
  setInterval(() => {
    for (const cell of rows.querySelectorAll<HTMLElement>('td.seen')) {
      cell.textContent = ago(Number(cell.dataset.time));
    }
  }, 1000);

  return {
    askKey(message = '') {
      stopFollowing?.();
      state = undefined;
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
    showLive(next) {
      stopFollowing?.();
      state = next;
      stopFollowing = next.onUpdate(scheduleRender);
      keyForm.hidden = true;
      live.hidden = false;
      forget.hidden = false;
      scheduleRender();
    },
    showConnection(info) {
      connection.dataset.state = info?.state ?? 'idle';
      connection.textContent = describe(info);
    },
  };
}

function row({ user, status, time }: { user: string; status: string; time: number }) {
  const cell = (text: string, className = '') => {
    const td = document.createElement('td');
    td.textContent = text;
    td.className = className;
    return td;
  };
  const seen = cell(ago(time), 'seen');
  seen.dataset.time = String(time);
  const tr = document.createElement('tr');
  tr.dataset.user = user;
  tr.dataset.status = status;
  tr.append(cell(user, 'user'), cell(status, `status status-${status}`), seen);
  return tr;
}

/** How long ago a Unix time (seconds) was, by this browser's clock. */
export function ago(time: number): string {
  const seconds = Math.max(0, Math.floor(Date.now() / 1000 - time));
  if (seconds < 1) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
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
