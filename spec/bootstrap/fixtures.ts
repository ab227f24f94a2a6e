// Key material shaped as the 0.3 chart made it (sprig's genCA: RSA 2048, the key PKCS#1 "RSA
// PRIVATE KEY"), made with the openssl CLI. The upgrade from the real 0.3.0 chart is
// spec/deploy/bootstrap.e2e.spec.ts.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function openssl0_3Ca(): Promise<{ certPem: string; keyPem: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ca-0.3-'));
  try {
    await run('openssl', ['genrsa', '-traditional', '-out', join(dir, 'ca.key'), '2048']);
    await run('openssl', ['req', '-x509', '-new', '-key', join(dir, 'ca.key'), '-subj', '/CN=dpu-credential-webhook-ca', '-days', '3650',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyEncipherment,digitalSignature,keyCertSign',
      '-out', join(dir, 'ca.crt')]);
    const [certPem, keyPem] = await Promise.all([readFile(join(dir, 'ca.crt'), 'utf8'), readFile(join(dir, 'ca.key'), 'utf8')]);
    if (!keyPem.startsWith('-----BEGIN RSA PRIVATE KEY-----')) throw new Error('openssl did not write a PKCS#1 key');
    return { certPem, keyPem };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
