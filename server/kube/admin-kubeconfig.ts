// A DPUCluster's admin kubeconfig, as its Secret in the host cluster holds it: which key
// (current DPF or 24.10/25.1), its base64, and the kubeconfig itself (kubeconfig.ts checks it).
import type { SecretObject } from '../api.js';
import { InvalidKubeconfigError, loadKubeconfig, type LoadedKubeconfig } from './kubeconfig.js';

/** Keys of a DPUCluster's kubeconfig Secret, newest DPF first. */
export const adminKubeconfigKeys = ['super-admin.conf', 'admin.conf'] as const;

export interface EncodedAdminKubeconfig {
  key: (typeof adminKubeconfigKeys)[number];
  /** The Secret's base64 value, as it is: compared to tell whether the kubeconfig changed. */
  encoded: string;
}

/**
 * The largest admin kubeconfig read (decoded): a kubeadm admin.conf is about 6 KiB, 12 KiB
 * with a longer certificate chain; 64 KiB leaves room for five times that. Whoever may write
 * the Secret chooses its size, and the YAML parser's time grows with it (kubeconfig.ts bounds
 * its shape too). The API server's own limit on a Secret, 1 MiB, is far above this.
 */
export const maxAdminKubeconfigBytes = 64 * 1024;

/** The admin kubeconfig's entry in `secret` ("namespace/name" in `secretRef`, for messages). */
export function encodedAdminKubeconfig(secret: SecretObject, secretRef: string, dpuClusterRef: string): EncodedAdminKubeconfig {
  for (const key of adminKubeconfigKeys) {
    const encoded = secret.data?.[key];
    if (!encoded) continue;
    // Before decoding or parsing anything: 4 characters of base64 hold 3 bytes.
    const decodedBytes = Math.floor(encoded.length / 4) * 3;
    if (decodedBytes > maxAdminKubeconfigBytes) {
      throw new InvalidKubeconfigError(`the ${key} of the kubeconfig Secret ${secretRef} of DPUCluster ${dpuClusterRef} is ${decodedBytes} bytes,`
        + ` more than a kubeconfig may be (${maxAdminKubeconfigBytes}): not read`);
    }
    return { key, encoded };
  }
  throw new InvalidKubeconfigError(`the kubeconfig Secret ${secretRef} of DPUCluster ${dpuClusterRef} has neither ${adminKubeconfigKeys.join(' nor ')}`);
}

/** Decodes and loads the kubeconfig; its problems are reported with the Secret and key they are in. */
export function loadAdminKubeconfig({ key, encoded }: EncodedAdminKubeconfig, secretRef: string): LoadedKubeconfig {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) throw new InvalidKubeconfigError(`the ${key} of Secret ${secretRef} is not base64`);
  try {
    return loadKubeconfig(Buffer.from(encoded, 'base64').toString('utf8'));
  } catch (error) {
    if (error instanceof InvalidKubeconfigError) throw new InvalidKubeconfigError(`the ${key} of Secret ${secretRef}: ${error.message}`);
    throw error;
  }
}
