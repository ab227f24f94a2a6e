// A file read once and again whenever it changes: the hook tokens and TLS certificate,
// which Kubernetes rotates by swapping a Secret volume's symlink. Polling stat follows
// the symlink, where fs.watch on the old inode would miss the swap.
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

export class WatchedFile {
  private content: Buffer | undefined;
  private readonly listeners: ((content: Buffer | undefined) => void)[] = [];
  private readonly poll: (current: Stats, previous: Stats) => void;

  /** `optional`: the file may be absent (then `current` is undefined) and may come and go. */
  constructor(readonly path: string, pollIntervalMs: number, private readonly optional = false) {
    this.content = this.read();
    this.poll = (current, previous) => {
      if (current.mtimeMs === previous.mtimeMs && current.ino === previous.ino && current.size === previous.size) return;
      try {
        this.content = this.read();
      } catch {
        return; // mid-swap; the next poll reads it
      }
      for (const listener of this.listeners) listener(this.content);
    };
    watchFile(path, { interval: pollIntervalMs, persistent: false }, this.poll);
  }

  private read(): Buffer | undefined {
    try {
      return readFileSync(this.path);
    } catch (error) {
      if (this.optional && isMissing(error)) return undefined;
      throw error;
    }
  }

  /**
   * The content on disk now, without waiting for the next poll. Not kept: only the poll
   * updates `current`, so a file that came and went between two polls leaves nothing behind.
   */
  readNow(): Buffer | undefined {
    try {
      return this.read();
    } catch {
      return this.content;
    }
  }

  get current(): Buffer | undefined {
    return this.content;
  }

  onChange(listener: (content: Buffer | undefined) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    // Only this watcher's listener: Node shares one stat poller per path among all of them.
    unwatchFile(this.path, this.poll);
  }
}
