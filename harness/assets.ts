// Finds the etcd and kube-apiserver binaries through scripts/envtest-assets.sh,
// which honours KUBEBUILDER_ASSETS and otherwise builds them once into a cache.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const assetsScript = fileURLToPath(new URL('../scripts/envtest-assets.sh', import.meta.url));
let assetsDir: Promise<string> | undefined;

export function envtestAssetsDir(): Promise<string> {
  assetsDir ??= lastLineOf(assetsScript);
  return assetsDir;
}

/**
 * Runs one of scripts/ and resolves with the last line it printed (a path). stderr passes
 * through: a first build reports its progress there.
 */
export function lastLineOf(script: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const lastLine = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && lastLine) resolve(lastLine);
      else reject(new Error(`${script} exited with ${code}; see its messages above`));
    });
  });
}
