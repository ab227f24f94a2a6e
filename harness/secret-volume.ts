// A Secret mounted as a volume, laid out as the kubelet's AtomicWriter does: the keys are
// symlinks into `..data`, itself a symlink to a timestamped folder that is swapped in one
// rename. Every key changes at once, as the webhook sees it in a Pod.
import { mkdir, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export class SecretVolume {
  private generation = 0;

  constructor(readonly dir: string) {}

  path(key: string): string {
    return join(this.dir, key);
  }

  /** Makes the volume hold exactly these keys. */
  async write(data: Record<string, string>): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.generation += 1;
    const payload = `..${Date.now()}_${this.generation}`;
    await mkdir(join(this.dir, payload));
    for (const [key, value] of Object.entries(data)) await writeFile(join(this.dir, payload, key), value, { mode: 0o600 });
    let previousPayload: string | undefined;
    try {
      previousPayload = await readlink(join(this.dir, '..data'));
    } catch {
      previousPayload = undefined;
    }
    await symlink(payload, join(this.dir, '..data_tmp'));
    await rename(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const key of Object.keys(data)) {
      await symlink(join('..data', key), join(this.dir, key)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
    }
    for (const entry of await readdir(this.dir)) {
      if (!entry.startsWith('..') && !(entry in data)) await rm(join(this.dir, entry));
    }
    if (previousPayload) await rm(join(this.dir, previousPayload), { recursive: true, force: true });
  }
}
