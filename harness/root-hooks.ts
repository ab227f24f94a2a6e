// Mocha root hooks: whatever a suite leaves running is stopped at the end of the run.
import { stopAllControlPlanes } from './control-plane.js';

export const mochaHooks = {
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    await stopAllControlPlanes();
  },
};
