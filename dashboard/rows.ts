import type { OnlineUser } from 'presently-client/socket';
import type { UserState } from './api.js';
import { devicesCell, tag } from './details.js';

/**
 * A row of the users table: id, status, devices (once read), message, last seen. The message
 * comes with the list and the socket's changes, the devices from the user's own status read.
 */
export function row(
  { user, status, time, message }: OnlineUser,
  selected: boolean,
  devices: UserState | undefined,
): HTMLTableRowElement {
  const seen = tag('td', 'seen', ago(time));
  seen.dataset.time = String(time);
  const said = tag('td', 'message', message ?? '');
  // Long messages are cut short by the style; the whole one shows on hover.
  if (message !== undefined) said.title = message;
  const tr = document.createElement('tr');
  tr.dataset.user = user;
  tr.dataset.status = status;
  tr.title = `Show the day of ${user}`;
  if (selected) tr.setAttribute('aria-selected', 'true');
  tr.append(
    tag('td', 'user', user),
    tag('td', `status status-${status}`, status),
    devicesCell(devices),
    said,
    seen,
  );
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
