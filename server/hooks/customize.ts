// The customize hook, kept for one release: the shipped CompositeController no longer has
// one (the webhook watches DPUClusters itself: docs/performance.md, "One DPUCluster update").
// A CompositeController of 0.3.x or earlier, still applied during an upgrade, calls it: the
// answer names nothing, so Metacontroller stops re-syncing every request on a DPUCluster at
// each of its status updates even before the new CompositeController is applied.
import type { CustomizeRequest, CustomizeResponse } from '../metacontroller.js';

export function customize(_request: CustomizeRequest): CustomizeResponse {
  return { relatedResources: [] };
}
