// The customize hook: ask Metacontroller for the request's DPUCluster, so that the
// sync hook receives it and a DPUCluster change (deleted, recreated) re-syncs the request.
import { isRecord } from '../api.js';
import type { CustomizeRequest, CustomizeResponse } from '../metacontroller.js';


export function customize(request: CustomizeRequest): CustomizeResponse {
  const spec = request.parent.spec;
  const targetCluster = isRecord(spec) && isRecord(spec.targetCluster) ? spec.targetCluster : undefined;
  if (!targetCluster || typeof targetCluster.name !== 'string' || targetCluster.name === '') return { relatedResources: [] };
  const namespace = typeof targetCluster.namespace === 'string' && targetCluster.namespace
    ? targetCluster.namespace
    : request.parent.metadata?.namespace ?? '';
  return {
    relatedResources: [{
      apiVersion: 'provisioning.dpu.nvidia.com/v1alpha1',
      resource: 'dpuclusters',
      namespace,
      names: [targetCluster.name],
    }],
  };
}
