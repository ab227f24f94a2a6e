// A reader following one sync from `sync()` should read the hooks as a story, not a maze: issue
// 26 counted by hand, on 1237077, 22 files entered and 50 comebacks to a file already left, and
// asked for at most half those comebacks and no file entered more than three times.
// scripts/sync-walk.ts counts the walk by fixed rules (its header says which).
import { expect } from 'chai';
import { resolve } from 'node:path';
import { walkSync, type SyncWalk } from '../scripts/sync-walk.js';

const root = resolve(import.meta.dirname, '..');
const maxEntriesPerFile = 3;

/** The files entered more than maxEntriesPerFile times, among those `among` accepts. */
const enteredTooOften = (walk: SyncWalk, among: (file: string) => boolean) => Object.entries(walk.entriesPerFile)
  .filter(([file, entries]) => among(file) && entries > maxEntriesPerFile).map(([file, entries]) => `${file}: ${entries}`);

const isHooks = (file: string) => file.startsWith('server/hooks/');

/** Comebacks into the files `among` accepts: each entry but the first (sync.ts's own entries are all comebacks). */
const comebacksInto = (walk: SyncWalk, among: (file: string) => boolean) => Object.entries(walk.entriesPerFile)
  .filter(([file]) => among(file)).reduce((sum, [file, entries]) => sum + entries - (file === 'server/hooks/sync.ts' ? 0 : 1), 0);

describe('the reader\'s walk through sync()', () => {
  // The hand count's way (one hop from sync()'s own file, every call a jump): on 1237077 this tool
  // counts its 22 files entered, and 73 comebacks (the hand count's 50 left out the returns into sync.ts).
  it('comes back at most 25 times and enters no file more than three times, read as the issue counted (one hop, every call)', () => {
    const walk = walkSync(root, { reach: 'start-file', reread: 'jump' });
    expect(enteredTooOften(walk, () => true)).to.deep.equal([]);
    expect(walk.comebacksByCalls, 'npx tsx scripts/sync-walk.ts --reach=start-file --reread=jump --trace').to.be.at.most(25);
  });

  // Every call followed to the end, each function read once: on 1237077 the hooks' own files took 24
  // comebacks (children.ts entered 7 times; sync-run.ts, grants.ts, outcome.ts, leftovers.ts 4 each).
  // The pure core's many small functions (credential/) are looked up where they are called; those
  // lookups are not held to the bound (docs/development.md says why).
  it('enters no file of server/hooks/ more than three times and comes back into them at most 12 times, every call followed', () => {
    const walk = walkSync(root);
    expect(enteredTooOften(walk, isHooks)).to.deep.equal([]);
    expect(comebacksInto(walk, isHooks), 'npx tsx scripts/sync-walk.ts --trace').to.be.at.most(12);
  });
});
