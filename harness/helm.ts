// Finds the helm binary through scripts/helm.sh, which honours HELM and otherwise builds
// helm once from the Go module pinned in hack/helm/ into a cache (as envtest-assets.sh does).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { lastLineOf } from './assets.js';

const helmScript = fileURLToPath(new URL('../scripts/helm.sh', import.meta.url));
const run = promisify(execFile);
let helmBinary: Promise<string> | undefined;

export function helmPath(): Promise<string> {
  helmBinary ??= lastLineOf(helmScript);
  return helmBinary;
}

/**
 * Runs helm with its own state (config, cache, data) under `home`, so tests neither read nor
 * write the user's helm settings. Rejects with helm's stderr when it fails.
 */
export async function helm(args: string[], options: { home: string; kubeconfig?: string; cwd?: string }): Promise<string> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HELM_CONFIG_HOME: `${options.home}/config`, HELM_CACHE_HOME: `${options.home}/cache`, HELM_DATA_HOME: `${options.home}/data`,
    ...(options.kubeconfig ? { KUBECONFIG: options.kubeconfig } : {}),
  };
  try {
    const { stdout } = await run(await helmPath(), args, { env, cwd: options.cwd, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new Error(`helm ${args[0]} failed: ${failure.stderr || failure.message}`);
  }
}

/** The last commit of the 0.3.0 chart, which rendered the hook token, the CA and the serving certificate itself (genCA, randAlphaNum, lookup). */
export const chart0_3Commit = 'e1a9f45399ecfc8d6f18231de15bc3ea54fe9231';
