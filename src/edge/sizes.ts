/**
 * The largest message any transport takes, a request body or a socket frame: room for 1,000 ids
 * of 128 characters, or 1,000 pings (at most 512 KB of ids in UTF-8, 4 bytes a character at
 * worst, with their quotes, commas and about 30 bytes of `"status": "available"` a ping). It
 * bounds the memory one message being received holds.
 */
export const MAX_BULK_MESSAGE_BYTES = 1024 * 1024;
