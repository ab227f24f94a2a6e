// A CompositeController as shipped up to 0.3.x: the shipped one plus a customize hook that
// names each request's DPUCluster as a related resource. The shipped controller has no
// customize hook any more (the webhook watches DPUClusters itself), and the webhook's
// /customize names nothing, so the driver's related-object model (MODEL.md) is tested, and
// the fan-out it costs measured (bench/fanout.ts), with this controller and a customize
// hook of its own: a plain-HTTP server on loopback answering as the webhook once did.
import express from 'express';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { isRecord } from '../../server/api.js';
import type { CustomizeRequest, CustomizeResponse } from '../../server/metacontroller.js';
import { readCompositeController } from './controller-spec.js';

/** The customize answer of 0.3.x: the request's DPUCluster (targetCluster, its namespace defaulting to the request's). */
export function namingDpuCluster(request: CustomizeRequest): CustomizeResponse {
  const spec = request.parent.spec;
  const targetCluster = isRecord(spec) && isRecord(spec.targetCluster) ? spec.targetCluster : undefined;
  if (!targetCluster || typeof targetCluster.name !== 'string' || targetCluster.name === '') return { relatedResources: [] };
  const namespace = typeof targetCluster.namespace === 'string' && targetCluster.namespace
    ? targetCluster.namespace
    : request.parent.metadata?.namespace ?? '';
  return {
    relatedResources: [{ apiVersion: 'provisioning.dpu.nvidia.com/v1alpha1', resource: 'dpuclusters', namespace, names: [targetCluster.name] }],
  };
}

export interface RelatedController {
  /** The CompositeController file to pass the driver as `controllerPath`. */
  controllerPath: string;
  close(): Promise<void>;
}

/** Starts the customize server and writes the controller that calls it. */
export async function startRelatedController(): Promise<RelatedController> {
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.post('/customize', (req, res) => {
    res.json(namingDpuCluster(req.body as CustomizeRequest));
  });
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const port = (server.address() as AddressInfo).port;
  const controller = await readCompositeController();
  controller.spec.hooks = {
    customize: { version: 'v2', webhook: { url: `http://127.0.0.1:${port}/customize`, timeout: '10s' } },
    ...controller.spec.hooks,
  };
  const dir = await mkdtemp(join(tmpdir(), 'related-controller-'));
  const controllerPath = join(dir, 'compositecontroller.yaml');
  await writeFile(controllerPath, stringify(controller));
  return {
    controllerPath,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
