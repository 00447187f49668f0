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
   * Registers how to release what was just acquired; steps run newest first. Once shutdown has
   * begun, the step runs after the others and StartupAborted is thrown, so that a signal during
   * start-up still releases everything, including what was being acquired when it came.
   */
  onStop(step: Step): void;
  /** Runs every step once, even after one fails; resolves true if all succeeded. */
  stop(): Promise<boolean>;
  /** SIGTERM and SIGINT stop; a second one later on, or the timeout, exits at once. */
  handleSignals(timeoutMs: number): void;
}

export function createShutdown(logger: Logger): Shutdown {
  const steps: Step[] = [];
  let stopping: Promise<boolean> | undefined;

  const runStep = async (step: Step) => {
    try {
      await step();
      return true;
    } catch (error) {
      logger.error({ err: error }, 'shutdown step failed');
      return false;
    }
  };

  const shutdown: Shutdown = {
    onStop(step) {
      if (!stopping) {
        steps.unshift(step);
        return;
      }
      stopping = stopping.then(async (ok) => (await runStep(step)) && ok);
      throw new StartupAborted();
    },

    stop() {
      stopping ??= (async () => {
        let ok = true;
        // Taken one at a time: a step may be added while earlier ones run.
        for (let step = steps.shift(); step; step = steps.shift()) ok = (await runStep(step)) && ok;
        return ok;
      })();
      return stopping;
    },

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
        logger.info({ signal }, 'shutting down');
        const force = setTimeout(() => {
          logger.error('shutdown timed out: exiting now');
          process.exit(1);
        }, timeoutMs);
        force.unref();
        void shutdown.stop().then((ok) => {
          clearTimeout(force);
          logger.info('stopped');
          process.exitCode = ok ? 0 : 1;
        });
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    },
  };
  return shutdown;
}
