// A file read once and again whenever it changes: the hook token and TLS certificate,
// which Kubernetes rotates by swapping a Secret volume's symlink. Polling stat follows
// the symlink, where fs.watch on the old inode would miss the swap.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';

export class WatchedFile {
  private content: Buffer;
  private readonly listeners: ((content: Buffer) => void)[] = [];

  constructor(readonly path: string, pollIntervalMs: number) {
    this.content = readFileSync(path);
    watchFile(path, { interval: pollIntervalMs, persistent: false }, (current, previous) => {
      if (current.mtimeMs === previous.mtimeMs && current.ino === previous.ino && current.size === previous.size) return;
      try {
        this.content = readFileSync(path);
      } catch {
        return; // mid-swap; the next poll reads it
      }
      for (const listener of this.listeners) listener(this.content);
    });
  }

  get current(): Buffer {
    return this.content;
  }

  onChange(listener: (content: Buffer) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    unwatchFile(this.path);
  }
}
