// `presently-client/socket`: the socket client, the presence state and the protocol's types.
// Nothing here imports the server, nor Node: browsers (the dashboard) take this entry.

export * from './backoff.js';
export * from './presence-state.js';
export * from './protocol.js';
export * from './socket-client.js';
export { socketUrl, type WebSocketConstructor, type WebSocketLike } from './websocket.js';
