import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import type { TestProject } from 'vitest/node';
import { migrate, readMigrations } from '../../src/db/migrate.js';
import { databaseUrl, dropDatabase, withAdmin } from '../helpers/admin.js';
import { provisionDatabaseServer } from './provision.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseServer: { adminUrl: string; template: string; kind: string };
  }
}

/** Starts (or finds) the server once and migrates a template that every test file clones. */
export default async function setup(project: TestProject) {
  const server = await provisionDatabaseServer();
  const template = `presently_template_${randomBytes(4).toString('hex')}`;
  try {
    await withAdmin(server.adminUrl, (admin) => admin.query(`create database ${template}`));
    await migrate(
      databaseUrl(server.adminUrl, template),
      await readMigrations(),
      pino({ level: 'warn' }),
    );
  } catch (error) {
    await server.stop();
    throw error;
  }
  process.stdout.write(`PostgreSQL for tests: ${server.kind}\n`);
  project.provide('databaseServer', { adminUrl: server.adminUrl, template, kind: server.kind });
  return async () => {
    await withAdmin(server.adminUrl, (admin) => dropDatabase(admin, template));
    await server.stop();
  };
}
