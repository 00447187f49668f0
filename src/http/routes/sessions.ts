import { createRoute } from '@hono/zod-openapi';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { requireUserKey } from '../../edge/auth.js';
import {
  messageSchema,
  overrideSchema,
  parseMessage,
  parseOverride,
} from '../../presence/overrides.js';
import {
  endSession,
  readUserState,
  setMessage,
  setOverride,
  unknownUser,
} from '../../presence/sessions.js';
import {
  parseSessionName,
  parseUserId,
  sessionName,
  userIdText,
} from '../../presence/validation.js';
import { limitBody, MAX_BODY_BYTES, readJson } from '../body.js';
import { methodNotAllowed } from '../errors.js';
import { dataOf, errorResponses, json, KEY_SECURITY, userStateSchema } from '../schemas.js';
import type { RouteDeps } from './deps.js';

/**
 * `/users/{id}/sessions/{session}`, `/users/{id}/override` and `/users/{id}/message`: each
 * answers the user's status afterwards, as `GET /users/{id}/status` does. The rules (what is
 * live, what the status becomes, what is logged) are all in SQL (migrations/0007).
 */
export function sessionRoutes({ db, keys }: RouteDeps) {
  const userKey = requireUserKey(keys);
  const answer = async (c: Context, user: string) => {
    const state = await readUserState(db, user);
    if (!state) throw unknownUser(user);
    return c.json({ data: state });
  };
  return new Hono()
    .delete('/:id/sessions/:session', userKey, async (c) => {
      const user = parseUserId(c.req.param('id'));
      await endSession(db, user, parseSessionName(c.req.param('session')));
      return answer(c, user);
    })
    .all('/:id/sessions/:session', userKey, methodNotAllowed('DELETE'))
    .put('/:id/override', userKey, limitBody(MAX_BODY_BYTES), async (c) => {
      const user = parseUserId(c.req.param('id'));
      await setOverride(db, user, parseOverride(await readJson(c)));
      return answer(c, user);
    })
    .delete('/:id/override', userKey, async (c) => {
      const user = parseUserId(c.req.param('id'));
      await setOverride(db, user, null);
      return answer(c, user);
    })
    .all('/:id/override', userKey, methodNotAllowed('PUT, DELETE'))
    .put('/:id/message', userKey, limitBody(MAX_BODY_BYTES), async (c) => {
      const user = parseUserId(c.req.param('id'));
      await setMessage(db, user, parseMessage(await readJson(c)));
      return answer(c, user);
    })
    .delete('/:id/message', userKey, async (c) => {
      const user = parseUserId(c.req.param('id'));
      await setMessage(db, user, null);
      return answer(c, user);
    })
    .all('/:id/message', userKey, methodNotAllowed('PUT, DELETE'));
}

const userParams = z.object({ id: userIdText });
const stateAnswer = json("The user's status afterwards", dataOf(userStateSchema));

const route = (
  method: 'put' | 'delete',
  path: string,
  summary: string,
  description: string,
  body?: z.ZodType,
  params: z.ZodObject = userParams,
) =>
  createRoute({
    method,
    path,
    tags: ['sessions'],
    summary,
    description,
    security: KEY_SECURITY,
    request: {
      params,
      ...(body
        ? { body: { required: true, content: { 'application/json': { schema: body } } } }
        : {}),
    },
    responses: { 200: stateAnswer, ...errorResponses(400, 401, 404, 503) },
  });

export const sessionRouteDocs = [
  route(
    'delete',
    '/users/{id}/sessions/{session}',
    'End a session',
    'Ends the session at once (`default`: the default session, pinged without `session`); with no other live session the user is away at once. 404 user_not_found, or session_not_found for a session that is not live.',
    undefined,
    userParams.extend({ session: sessionName }),
  ),
  route(
    'put',
    '/users/{id}/override',
    'Set do-not-disturb or appear-away',
    'While it lasts and a session of the user is live, the user is `status` (busy: do not disturb; away: appear away). Its end is announced by the sweep, dated at `expires`. An expiry in the past or more than a year ahead is invalid_expires.',
    overrideSchema,
  ),
  route('delete', '/users/{id}/override', 'End the override', 'Ends the override, if any.'),
  route(
    'put',
    '/users/{id}/message',
    'Set the status message',
    'Shown as `message` in lists and status answers while it lasts; set, cleared or expired, it reaches subscribers as a presence-change.',
    messageSchema,
  ),
  route('delete', '/users/{id}/message', 'Clear the status message', 'Clears the message, if any.'),
];
