// Structured JSON logs, one object per line. Callers pass names, reasons and
// durations; never a token, a kubeconfig or a Secret's data.

export const logLevels = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof logLevels)[number];
export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/**
 * Standard output, one write per turn of the event loop: stdout is synchronous for files and
 * pipes, and a write system call per hook call cost more than building the line. Whatever is
 * still pending when the process exits (process.exit, an uncaught error) is written then.
 */
function batchedStdout(): (line: string) => void {
  let pending = '';
  const flush = () => {
    if (!pending) return;
    const lines = pending;
    pending = '';
    process.stdout.write(lines);
  };
  process.on('exit', flush);
  return (line) => {
    if (!pending) setImmediate(flush);
    pending += line;
  };
}

let stdout: ((line: string) => void) | undefined;

export function createLogger(minimum: LogLevel, write: (line: string) => void = stdout ??= batchedStdout()): Logger {
  const threshold = logLevels.indexOf(minimum);
  const emit = (level: LogLevel) => (message: string, fields: LogFields = {}) => {
    if (logLevels.indexOf(level) < threshold) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
