// Finds the etcd and kube-apiserver binaries through scripts/envtest-assets.sh,
// which honours KUBEBUILDER_ASSETS and otherwise builds them once into a cache.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const assetsScript = fileURLToPath(new URL('../scripts/envtest-assets.sh', import.meta.url));
let assetsDir: Promise<string> | undefined;

export function envtestAssetsDir(): Promise<string> {
  assetsDir ??= new Promise<string>((resolve, reject) => {
    // stderr passes through: the first build reports its progress there.
    const child = spawn('bash', [assetsScript], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const lastLine = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && lastLine) resolve(lastLine);
      else reject(new Error(`scripts/envtest-assets.sh exited with ${code}; see its messages above`));
    });
  });
  return assetsDir;
}
