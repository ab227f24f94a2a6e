// Child processes that must not outlive the test run: every one started here is
// killed when the run ends, also after a failure, an uncaught error or Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';

const running = new Set<ChildProcess>();
const stopGraceMs = 5_000;

function killAllNow(): void {
  for (const child of running) {
    if (child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  running.clear();
}

process.once('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    // A program that handles this signal itself (the demo) stops its processes gracefully.
    if (process.listenerCount(signal) > 0) return;
    killAllNow();
    process.exit(130);
  });
}

export interface ManagedProcess {
  readonly pid: number;
  readonly logPath: string;
  /** Resolves when the process has exited, for any reason. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

export async function startProcess(command: string, args: string[], logPath: string, env?: NodeJS.ProcessEnv): Promise<ManagedProcess> {
  const log = await open(logPath, 'a');
  const child = spawn(command, args, { stdio: ['ignore', log.fd, log.fd], ...(env ? { env } : {}) });
  running.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running.delete(child);
      void log.close();
      resolve(code);
    });
    child.once('error', () => {
      running.delete(child);
      void log.close();
      resolve(null);
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => reject(new Error(`cannot start ${command}: ${error.message}`)));
  });
  return {
    pid: child.pid!,
    logPath,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function logTail(logPath: string, lines = 25): Promise<string> {
  try {
    return (await readFile(logPath, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
