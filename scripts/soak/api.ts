import type { Statuses } from './view.js';

// The service's REST side as the soak uses it: every answer of the load is counted by status,
// and a request that got no answer at all (refused, reset, timed out) counts as a failure.

export interface HttpCounters {
  requests: number;
  byStatus: Map<number, number>;
  /** Requests that got no HTTP answer. */
  failures: number;
  failureExamples: string[];
  /** 5xx answers: status, error code and when, the first ones. */
  serverErrorExamples: string[];
}

export const newHttpCounters = (): HttpCounters => ({
  requests: 0,
  byStatus: new Map(),
  failures: 0,
  failureExamples: [],
  serverErrorExamples: [],
});

export const count5xx = (counters: HttpCounters) =>
  [...counters.byStatus].reduce((sum, [status, n]) => sum + (status >= 500 ? n : 0), 0);

/** Answers that were not 2xx, and requests with no answer. */
export const countErrors = (counters: HttpCounters) =>
  counters.failures +
  [...counters.byStatus].reduce((sum, [status, n]) => sum + (status >= 300 ? n : 0), 0);

/** How long a request may take before it counts as unanswered. */
export const REQUEST_TIMEOUT_S = 30;

export interface Api {
  counters: HttpCounters;
  /** A load request: counted, never throws. */
  send(method: 'GET' | 'POST', path: string, body?: unknown): Promise<number>;
  ping(user: string, status: string): Promise<number>;
  /** GET /users/list/all: every user's status. Not counted as load; tried three times. */
  statuses(): Promise<Statuses>;
  /** The metrics text (system key). Not counted as load. */
  metrics(): Promise<string>;
  /** GET /healthz answered 200 (within the request timeout). */
  healthz(): Promise<boolean>;
}

export function createApi(options: { url: string; key: string; systemKey: string }): Api {
  const counters = newHttpCounters();
  const auth = (key: string) => ({ authorization: `Bearer ${key}` });

  const send: Api['send'] = async (method, path, body) => {
    counters.requests += 1;
    try {
      const response = await fetch(`${options.url}${path}`, {
        method,
        headers: auth(options.key),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_S * 1000),
      });
      const answer = await response.text();
      if (response.status >= 500 && counters.serverErrorExamples.length < 10) {
        const code = /"code":"([^"]*)"/.exec(answer)?.[1];
        const at = new Date().toISOString();
        counters.serverErrorExamples.push(`${at} ${method} ${path}: ${response.status} ${code}`);
      }
      counters.byStatus.set(response.status, (counters.byStatus.get(response.status) ?? 0) + 1);
      return response.status;
    } catch (error) {
      counters.failures += 1;
      if (counters.failureExamples.length < 10) {
        counters.failureExamples.push(`${method} ${path}: ${describe(error)}`);
      }
      return 0;
    }
  };

  const read = async (path: string, key: string): Promise<string> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(`${options.url}${path}`, {
          headers: auth(key),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_S * 1000),
        });
        const text = await response.text();
        if (response.status === 200) return text;
        throw new Error(`answered ${response.status}`);
      } catch (error) {
        if (attempt === 3) throw new Error(`GET ${path}: ${describe(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  };

  return {
    counters,
    send,
    ping: (user, status) => send('POST', '/users/ping', { id: user, status }),
    async statuses() {
      const { data } = JSON.parse(await read('/users/list/all', options.key)) as {
        data: { user: string; status: string }[];
      };
      return new Map(data.map(({ user, status }) => [user, status]));
    },
    metrics: () => read('/metrics', options.systemKey),
    healthz: () =>
      fetch(`${options.url}/healthz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_S * 1000) })
        .then(async (response) => {
          await response.arrayBuffer();
          return response.ok;
        })
        .catch(() => false),
  };
}

const describe = (error: unknown) => {
  const cause = (error as Error & { cause?: Error }).cause;
  return `${(error as Error).message}${cause ? ` (${cause.message})` : ''}`;
};

/** The value of an unlabelled sample of the Prometheus text format, if there. */
export function metricValue(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name} ([0-9.eE+-]+)$`, 'm').exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}
