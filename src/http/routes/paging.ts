/** `Link: <same URL with cursor=next>; rel="next"`, for clients that follow links. */
export function nextPageLink(requestUrl: string, cursor: string): string {
  const url = new URL(requestUrl);
  url.searchParams.set('cursor', cursor);
  for (const name of ['key']) url.searchParams.delete(name);
  return `<${url.pathname}${url.search}>; rel="next"`;
}
