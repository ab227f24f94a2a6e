// Reads an admin kubeconfig (from a DPUCluster's Secret, or the webhook's own) into the
// endpoint written to outputs and a KubeConfig to call the cluster with.
import { KubeConfig } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import type { ClusterEndpoint } from '../credential/render.js';

export class InvalidKubeconfigError extends Error {
  override name = 'InvalidKubeconfigError';
}

export interface LoadedKubeconfig {
  config: KubeConfig;
  endpoint: ClusterEndpoint;
}

const pemCertificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

function caPemOf(caData: string | undefined, caFile: string | undefined): string {
  let pem: string;
  if (caData) {
    pem = Buffer.from(caData, 'base64').toString('utf8');
  } else if (caFile) {
    try {
      pem = readFileSync(caFile, 'utf8');
    } catch (error) {
      throw new InvalidKubeconfigError(`cannot read certificate-authority ${caFile}: ${(error as Error).message}`);
    }
  } else {
    throw new InvalidKubeconfigError('the cluster has no certificate-authority-data');
  }
  if (!pemCertificate.test(pem)) throw new InvalidKubeconfigError('the cluster\'s certificate authority is not a PEM certificate');
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

function checkServer(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new InvalidKubeconfigError(`the cluster's server "${server}" is not a URL`);
  }
  if (url.protocol !== 'https:') throw new InvalidKubeconfigError(`the cluster's server "${server}" is not an https URL`);
  return server.replace(/\/+$/, '');
}

/**
 * Parses kubeconfig YAML. The current context names the cluster and user; without
 * one, the kubeconfig must have exactly one cluster and one user.
 */
export function loadKubeconfig(text: string, options: { clusterName?: string } = {}): LoadedKubeconfig {
  const config = new KubeConfig();
  try {
    config.loadFromString(text);
  } catch (error) {
    throw new InvalidKubeconfigError(`not a valid kubeconfig: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!config.getCurrentContext() || !config.getContextObject(config.getCurrentContext())) {
    if (config.getClusters().length !== 1 || config.getUsers().length !== 1) {
      throw new InvalidKubeconfigError(`no current context, and ${config.getClusters().length} clusters and ` +
        `${config.getUsers().length} users: cannot tell which to use`);
    }
    const [cluster] = config.getClusters();
    const [user] = config.getUsers();
    config.loadFromOptions({
      clusters: config.getClusters(), users: config.getUsers(),
      contexts: [{ name: 'only', cluster: cluster!.name, user: user!.name }], currentContext: 'only',
    });
  }
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new InvalidKubeconfigError('the current context names no known cluster');
  if (!config.getCurrentUser()) throw new InvalidKubeconfigError('the current context names no known user');
  return {
    config,
    endpoint: {
      clusterName: options.clusterName ?? cluster.name,
      server: checkServer(cluster.server),
      caPem: caPemOf(cluster.caData, cluster.caFile),
    },
  };
}
