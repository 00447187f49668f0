import type { SessionPresence, UserState } from './api.js';

// A user's devices, override and message as page elements: the compact form for a table row and
// the full one for the opened user. Everything a user sent (session names, messages) goes in as
// text (textContent, attributes), never as markup.

const OVERRIDES = { busy: 'do not disturb', away: 'appears away' } as const;

/** An element with classes and text. */
export function tag<K extends keyof HTMLElementTagNameMap>(
  name: K,
  className: string,
  text = '',
): HTMLElementTagNameMap[K] {
  const element = document.createElement(name);
  element.className = className;
  element.textContent = text;
  return element;
}

/** "until 14:30" today, "until Tue 09:00" within a week, else with the date. */
export function until(expires: string | null | undefined): string {
  if (!expires) return 'until ended';
  const at = new Date(expires);
  const now = new Date();
  const time = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  if (at.toDateString() === now.toDateString()) return `until ${time}`;
  const days = (at.getTime() - now.getTime()) / 86_400_000;
  const date =
    days < 6
      ? at.toLocaleDateString([], { weekday: 'short' })
      : at.toLocaleDateString([], { day: 'numeric', month: 'short', year: 'numeric' });
  return `until ${date} ${time}`;
}

/** "phone busy", coloured by its status; its name is the user's text. */
function sessionChip({ session, status }: SessionPresence): HTMLElement {
  const chip = tag('span', `chip session status-${status}`);
  chip.dataset.session = session;
  chip.dataset.status = status;
  chip.append(tag('span', 'name', session), ` ${status}`);
  return chip;
}

function overrideChip(override: NonNullable<UserState['override']>): HTMLElement {
  const chip = tag(
    'span',
    `chip override status-${override.status}`,
    `${OVERRIDES[override.status]} ${until(override.expires)}`,
  );
  chip.dataset.status = override.status;
  return chip;
}

/**
 * The row's devices: each live session with its status, then the override. Empty for a user
 * who never named a session (one default session, as the seed's clients ping) and no override.
 */
export function devicesCell(state: UserState | undefined): HTMLTableCellElement {
  const cell = tag('td', 'devices');
  if (!state) return cell;
  if (state.sessions?.length === 0) cell.append(tag('span', 'none', 'no live session'));
  for (const session of state.sessions ?? []) cell.append(sessionChip(session));
  if (state.override) cell.append(overrideChip(state.override));
  return cell;
}

/** The opened user's devices, override and message, in full, as labelled terms. */
export function detailsOf(state: UserState | undefined, ago: (time: number) => string): Node[] {
  if (!state) return [tag('p', 'note', 'Reading this user’s devices…')];
  const message = tag('dd', 'message');
  if (state.message === undefined) message.append(tag('span', 'none', 'none'));
  else message.append(tag('q', 'text', state.message), ` ${until(state.message_expires)}`);
  const override = tag('dd', 'override');
  if (state.override) override.append(overrideChip(state.override));
  else override.append(tag('span', 'none', 'none: the status is merged from the devices'));
  const list = tag('dl', 'details');
  list.append(
    tag('dt', '', 'Message'),
    message,
    tag('dt', '', 'Override'),
    override,
    tag('dt', '', 'Devices'),
    sessionList(state, ago),
  );
  return [list];
}

function sessionList(state: UserState, ago: (time: number) => string): HTMLElement {
  const sessions = tag('dd', 'sessions');
  if (state.sessions === undefined) {
    sessions.append(tag('span', 'none', 'one (the default session: none named)'));
  } else if (state.sessions.length === 0) {
    sessions.append(tag('span', 'none', 'no live session'));
  } else {
    const list = tag('ul', '');
    for (const session of state.sessions) {
      const item = tag('li', '');
      item.dataset.session = session.session;
      item.append(sessionChip(session), tag('span', 'when', `last ping ${ago(session.time)}`));
      list.append(item);
    }
    sessions.append(list);
  }
  return sessions;
}
