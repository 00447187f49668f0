import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig(env, '/srv');
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('loadConfig', () => {
  it('has the contract defaults', () => {
    expect(loadConfig({}, '/srv')).toEqual({
      port: 3000,
      host: '0.0.0.0',
      databaseUrl: undefined,
      reportingDatabaseUrl: undefined,
      dataDir: path.resolve('/srv', '.data'),
      accessKey: undefined,
      accessKeySystem: undefined,
      awayTimeoutSeconds: 60,
      reportTimezone: 'UTC',
      historyRetentionDays: 90,
      logLevel: 'info',
      logFormat: undefined,
      metricsPublic: false,
      corsOrigins: [],
      workers: 1,
      limits: {
        requestsPerSecond: 20_000,
        socketsPerAddress: 20_000,
        framesPerSecond: 1_000,
        watchUsers: 1_000,
      },
    });
  });

  it('reads WORKERS as a whole number, or auto for one per core', () => {
    expect(loadConfig({ WORKERS: '4' }, '/srv').workers).toBe(4);
    expect(loadConfig({ WORKERS: 'auto' }, '/srv').workers).toBe(os.availableParallelism());
  });

  it('reads CORS_ORIGINS as a list, or * for any origin', () => {
    const list = 'https://app.example.com, http://localhost:5173';
    expect(loadConfig({ CORS_ORIGINS: list }, '/srv').corsOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
    expect(loadConfig({ CORS_ORIGINS: '*' }, '/srv').corsOrigins).toBe('*');
  });

  it('reads every variable', () => {
    const config = loadConfig(
      {
        PORT: '8080',
        HOST: '127.0.0.1',
        DATABASE_URL: 'postgres://u:p@db:5432/presence',
        REPORTING_DATABASE_URL: 'postgres://u:p@replica:5432/presence',
        DATA_DIR: 'state',
        ACCESS_KEY: 'user-key',
        ACCESS_KEY_SYSTEM: 'system-key',
        AWAY_TIMEOUT_SECONDS: '2.5',
        REPORT_TIMEZONE: 'Asia/Kolkata',
        HISTORY_RETENTION_DAYS: '7',
        LOG_LEVEL: 'debug',
        LOG_FORMAT: 'pretty',
        METRICS_PUBLIC: 'true',
        CORS_ORIGINS: 'https://app.example.com',
        LIMIT_REQUESTS_PER_SECOND: '100',
        LIMIT_SOCKETS_PER_ADDRESS: '0',
        LIMIT_FRAMES_PER_SECOND: '5',
        LIMIT_WATCH_USERS: '50',
        WORKERS: '3',
      },
      '/srv',
    );
    expect(config).toEqual({
      port: 8080,
      host: '127.0.0.1',
      databaseUrl: 'postgres://u:p@db:5432/presence',
      reportingDatabaseUrl: 'postgres://u:p@replica:5432/presence',
      dataDir: '/srv/state',
      accessKey: 'user-key',
      accessKeySystem: 'system-key',
      awayTimeoutSeconds: 2.5,
      reportTimezone: 'Asia/Kolkata',
      historyRetentionDays: 7,
      logLevel: 'debug',
      logFormat: 'pretty',
      metricsPublic: true,
      corsOrigins: ['https://app.example.com'],
      workers: 3,
      limits: { requestsPerSecond: 100, socketsPerAddress: 0, framesPerSecond: 5, watchUsers: 50 },
    });
  });

  it('treats empty variables as unset', () => {
    expect(
      loadConfig({ PORT: '', ACCESS_KEY: '', AWAY_TIMEOUT_SECONDS: '' }, '/srv'),
    ).toMatchObject({
      port: 3000,
      accessKey: undefined,
      awayTimeoutSeconds: 60,
    });
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '65536'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['PORT', ' '],
    ['HOST', 'two words'],
    ['DATABASE_URL', 'mysql://localhost/db'],
    ['DATABASE_URL', 'not a url'],
    ['REPORTING_DATABASE_URL', 'http://replica/db'],
    ['ACCESS_KEY', 'has space'],
    ['ACCESS_KEY', 'base64+with/slash='],
    ['ACCESS_KEY_SYSTEM', 'a&b'],
    ['ACCESS_KEY_SYSTEM', 'x'.repeat(257)],
    ['AWAY_TIMEOUT_SECONDS', '0'],
    ['AWAY_TIMEOUT_SECONDS', '-5'],
    ['AWAY_TIMEOUT_SECONDS', 'soon'],
    ['REPORT_TIMEZONE', 'Mars/Olympus_Mons'],
    ['REPORT_TIMEZONE', 'UTC; drop table x'],
    ['HISTORY_RETENTION_DAYS', '0'],
    ['HISTORY_RETENTION_DAYS', '1.5'],
    ['HISTORY_RETENTION_DAYS', '36501'],
    ['AWAY_TIMEOUT_SECONDS', '1e3'],
    ['LOG_LEVEL', 'loud'],
    ['CORS_ORIGINS', 'app.example.com'],
    ['LIMIT_REQUESTS_PER_SECOND', '-1'],
    ['LIMIT_FRAMES_PER_SECOND', 'lots'],
    ['LIMIT_WATCH_USERS', '0'],
    ['LIMIT_WATCH_USERS', '100001'],
    ['CORS_ORIGINS', 'https://app.example.com/path'],
    ['CORS_ORIGINS', 'ftp://files.example.com'],
    ['LOG_FORMAT', 'yaml'],
    ['METRICS_PUBLIC', 'yes'],
    ['METRICS_PUBLIC', 'TRUE'],
    ['WORKERS', '0'],
    ['WORKERS', '1.5'],
    ['WORKERS', 'all'],
    ['WORKERS', '-2'],
    ['WORKERS', '1025'],
  ])('refuses %s=%j, naming it', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name} `));
  });

  it('names every invalid variable at once, without echoing values', () => {
    const problems = problemsOf({ PORT: 'x', LOG_LEVEL: 'y', ACCESS_KEY: 'secret with space' });
    expect(problems.map((p) => p.split(' ')[0]).sort()).toEqual([
      'ACCESS_KEY',
      'LOG_LEVEL',
      'PORT',
    ]);
    expect(problems.join('\n')).not.toContain('secret with space');
  });
});
