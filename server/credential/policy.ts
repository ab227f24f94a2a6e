// The limits an operator sets on what requests may ask for (docs/operations.md lists the settings).
export interface Policy {
  /** Namespaces (or prefixes ending in `*`) where no ServiceAccount is made or used, besides kube-*. */
  protectedNamespaces: string[];
  /** The longest token lifetime a request may ask for. */
  maxTokenDurationSeconds: number;
  /**
   * How long the token a routine renewal replaced keeps working once the Secret is seen
   * holding its successor: the kubelet refreshes mounted Secrets within about a minute,
   * and clients that read the file or kubeconfig again need a moment more.
   */
  renewalGraceMs: number;
  /** The least time between two forced rotations (the rotate annotation) of one request. */
  minForcedRotationIntervalMs: number;
}

export const defaultPolicy: Policy = {
  // Metacontroller's and this webhook's own namespaces, as the release manifests name them.
  protectedNamespaces: ['metacontroller', 'dpu-credential-webhook'],
  maxTokenDurationSeconds: 168 * 3600,
  renewalGraceMs: 10 * 60_000,
  minForcedRotationIntervalMs: 60_000,
};

/** The CRD refuses longer durations at apply; the webhook's own ceiling may only be lower. */
export const crdMaxTokenDurationSeconds = 720 * 3600;
