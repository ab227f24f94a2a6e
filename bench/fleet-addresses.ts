// The loopback addresses the fleet benchmark (bench/fleet.ts) reaches the target API server
// through, one per DPUCluster, plus one for its single-cluster comparison run. All of 127/8 is
// loopback on Linux. The target control plane's serving certificate names them (IP SANs).

/** BENCH_FLEET_CLUSTERS: how many DPUClusters the fleet run spreads its requests over (100). */
export const fleetClusters = Number(process.env.BENCH_FLEET_CLUSTERS ?? 100);

/** The address of cluster `index`: 127.0.0.2 upwards (127.0.1.x and on past 254 clusters). */
export function fleetAddress(index: number): string {
  const n = index + 2;
  return `127.0.${n >> 8}.${n & 255}`;
}

/** Every address the benchmark uses: one per fleet cluster and one for the comparison run (the last). */
export const fleetIpSans = (): string[] => Array.from({ length: fleetClusters + 1 }, (_, index) => fleetAddress(index));
