import type { Logger } from './logger.js';

type Step = () => Promise<void>;

/** Thrown into start-up when a signal arrived meanwhile: stop starting, nothing is wrong. */
export class StartupAborted extends Error {
  constructor() {
    super('start-up aborted by a signal');
    this.name = 'StartupAborted';
  }
}

export interface Shutdown {
  /**
   * Registers how to release what was just acquired; steps run newest first. If a signal came
   * during start-up, the step is kept and StartupAborted is thrown: start-up ends at the next
   * step it completes (a migration is never cut short), and then stops what it had started.
   */
  onStop(step: Step): void;
  /** Start-up is over: a signal now stops at once. */
  started(): void;
  /** Whether a signal asked to stop. */
  readonly stopRequested: boolean;
  /** Runs every step once, even after one fails; resolves true if all succeeded. */
  stop(): Promise<boolean>;
  /** SIGTERM and SIGINT stop; a second one later on, or the timeout, exits at once. */
  handleSignals(timeoutMs: number): void;
}

export function createShutdown(logger: Logger): Shutdown {
  const steps: Step[] = [];
  let running = false;
  let requested = false;
  let stopping: Promise<boolean> | undefined;
  let force: NodeJS.Timeout | undefined;

  const runStep = async (step: Step) => {
    try {
      await step();
      return true;
    } catch (error) {
      logger.error({ err: error }, 'shutdown step failed');
      return false;
    }
  };

  const stop = () => {
    stopping ??= (async () => {
      let ok = true;
      for (const step of steps) ok = (await runStep(step)) && ok;
      clearTimeout(force);
      logger.info('stopped');
      process.exitCode = ok ? 0 : 1;
      return ok;
    })();
    return stopping;
  };

  return {
    onStop(step) {
      steps.unshift(step);
      if (requested) throw new StartupAborted();
    },
    started() {
      running = true;
      if (requested) void stop();
    },
    get stopRequested() {
      return requested;
    },
    stop,
    handleSignals(timeoutMs) {
      let firstSignalAt: number | undefined;
      const onSignal = (signal: NodeJS.Signals) => {
        if (firstSignalAt !== undefined) {
          // npm forwards the terminal's Ctrl-C to its child, which already got it from the
          // terminal: a repeat within a second is that echo, not a person insisting.
          if (Date.now() - firstSignalAt < 1_000) return;
          logger.warn({ signal }, 'second signal: exiting now');
          process.exit(1);
        }
        firstSignalAt = Date.now();
        requested = true;
        logger.info({ signal }, 'shutting down');
        force = setTimeout(() => {
          logger.error('shutdown timed out: exiting now');
          process.exit(1);
        }, timeoutMs);
        force.unref();
        if (running) void stop();
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    },
  };
}
