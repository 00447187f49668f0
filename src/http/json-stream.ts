const UTF8 = new TextEncoder();

/**
 * `{"data":[` + the chunks joined by commas + `]}` as a stream that asks for the next chunk only
 * when the previous one has been taken (the server waits for the socket to drain before reading
 * again), so that a slow client holds a chunk or two, never the whole list.
 *
 * The first chunk is read before anything is answered: a database that cannot be reached at all
 * is still a 503 like everywhere else. Once the 200 and part of the body are out, a failure
 * cannot become an error answer any more; the stream is errored instead, which makes the server
 * destroy the connection before the body's end, so the client sees a broken transfer, never a
 * shorter list that looks whole. `onFailure` is told (for the log).
 */
export async function streamDataArray(
  chunks: AsyncGenerator<string>,
  onFailure: (error: unknown) => void,
): Promise<ReadableStream<Uint8Array>> {
  const first = await chunks.next();
  let opened = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!opened) {
          opened = true;
          controller.enqueue(UTF8.encode(`{"data":[${first.done ? '' : first.value}`));
          if (first.done) close(controller);
          return;
        }
        try {
          const next = await chunks.next();
          if (next.done) close(controller);
          else controller.enqueue(UTF8.encode(`,${next.value}`));
        } catch (error) {
          onFailure(error);
          controller.error(error);
        }
      },
      async cancel() {
        // The client went away: stop reading chunks.
        await chunks.return(undefined);
      },
    },
    // Nothing read ahead of what the server has written.
    { highWaterMark: 0 },
  );
}

function close(controller: ReadableStreamDefaultController<Uint8Array>) {
  controller.enqueue(UTF8.encode(']}'));
  controller.close();
}
