// A file Kubernetes rotates in place: the hook tokens and TLS certificate (a Secret volume,
// whose symlink is swapped) and the in-cluster ServiceAccount token (replaced by renaming).
// Both readers below keep the last content when a read fails meanwhile: the swap is under way,
// and the next read finds the new file.
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

/** Read at once (it must be there, unless `optional`), and again when asked. */
export class RotatingFile {
  private content: Buffer | undefined;

  /** `optional`: the file may be absent (then `current` is undefined) and may come and go. */
  constructor(readonly path: string, private readonly optional = false) {
    this.content = this.read();
  }

  private read(): Buffer | undefined {
    try {
      return readFileSync(this.path);
    } catch (error) {
      if (this.optional && isMissing(error)) return undefined;
      throw error;
    }
  }

  get current(): Buffer | undefined {
    return this.content;
  }

  /** Reads the file again into `current`; false, keeping the last content, when the read fails. */
  reread(): boolean {
    try {
      this.content = this.read();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The content on disk now, without keeping it: only `reread` updates `current`, so a file
   * that came and went between two rereads leaves nothing behind.
   */
  readNow(): Buffer | undefined {
    try {
      return this.read();
    } catch {
      return this.content;
    }
  }
}

/**
 * A RotatingFile read again whenever it changes. Polling stat follows the symlink of a Secret
 * volume, where fs.watch on the old inode would miss the swap.
 */
export class WatchedFile extends RotatingFile {
  private readonly listeners: ((content: Buffer | undefined) => void)[] = [];
  private readonly poll: (current: Stats, previous: Stats) => void;

  constructor(path: string, pollIntervalMs: number, optional = false) {
    super(path, optional);
    this.poll = (current, previous) => {
      if (current.mtimeMs === previous.mtimeMs && current.ino === previous.ino && current.size === previous.size) return;
      if (!this.reread()) return; // mid-swap; the next poll reads it
      for (const listener of this.listeners) listener(this.current);
    };
    watchFile(path, { interval: pollIntervalMs, persistent: false }, this.poll);
  }

  onChange(listener: (content: Buffer | undefined) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    // Only this watcher's listener: Node shares one stat poller per path among all of them.
    unwatchFile(this.path, this.poll);
  }
}
