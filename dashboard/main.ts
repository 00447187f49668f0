import {
  createPresenceSocket,
  createPresenceState,
  type PresenceSocket,
} from 'presently-client/socket';
import { createApi } from './api.js';
import { createView } from './view.js';

// The dashboard, bundled to /dashboard/app.js. The key is asked once per tab and kept in
// sessionStorage (gone with the tab). The counts and the rows on screen come through the typed
// socket client, which follows only those rows (users=none, then a subscribe per page); the
// pages, the search and the charts through REST.

const KEY_STORAGE = 'presently.key';

/**
 * Whether the key opens the user routes. A socket cannot tell: a refused upgrade reaches a
 * browser as a bare close, the same as a service that is down.
 */
async function checkKey(key: string): Promise<'valid' | 'invalid' | 'unknown'> {
  try {
    const response = await fetch('/users/count', { headers: { Authorization: `Bearer ${key}` } });
    if (response.status === 401) return 'invalid';
    return response.ok ? 'valid' : 'unknown';
  } catch {
    return 'unknown';
  }
}

function main() {
  const view = createView(document);
  let socket: PresenceSocket | undefined;

  const disconnect = () => {
    socket?.close();
    socket = undefined;
    view.showConnection(undefined);
  };
  const forgetKey = (message?: string) => {
    sessionStorage.removeItem(KEY_STORAGE);
    disconnect();
    view.askKey(message);
  };
  const connect = (key: string) => {
    disconnect();
    const state = createPresenceState();
    const current = createPresenceSocket({ url: location.origin, key, users: 'none' });
    socket = current;
    state.follow(current);
    current.on('state', (info) => {
      view.showConnection(info);
      // A key that stopped working (the service got new keys) would be retried forever.
      if (info.state !== 'waiting') return;
      void checkKey(key).then((check) => {
        if (check === 'invalid' && socket === current) forgetKey('The key is no longer valid.');
      });
    });
    view.showLive({ state, socket: current, api: createApi(key) });
  };

  view.onKey(async (key) => {
    // A service that cannot answer now may still take the key: the socket keeps trying.
    if ((await checkKey(key)) === 'invalid') {
      view.askKey('This key is not valid.');
      return;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    connect(key);
  });
  view.onForget(() => forgetKey());
  view.onKeyRefused(() => forgetKey('The key is no longer valid.'));
  // Back online: no need to wait for the backoff.
  window.addEventListener('online', () => socket?.reconnect());

  const stored = sessionStorage.getItem(KEY_STORAGE);
  if (stored) connect(stored);
  else view.askKey();
}

main();
