// The shipped manifests: deploy/ rendered with kustomize (kubectl's) and every object created
// with server-side dry run against a real API server; the rest checked against the code.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { Metrics } from '../../server/metrics.js';
import { KubeRestClient } from '../../server/kube/rest.js';
import { envtestAssetsDir } from '../support/assets.js';
import { startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { createObjects } from '../support/kube-helpers.js';
import { controlPlaneStartTimeoutMs } from '../support/webhook-env.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
}

async function manifestsIn(path: string): Promise<Manifest[]> {
  return parseAllDocuments(await readFile(join(root, path), 'utf8')).map((document) => document.toJS() as Manifest);
}

describe('deploy/ and metacontroller/ manifests', function () {
  let plane: ControlPlane;
  let rendered: Manifest[];

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'manifests' });
    const { stdout } = await run(join(await envtestAssetsDir(), 'kubectl'), ['kustomize', join(root, 'deploy')]);
    rendered = parseAllDocuments(stdout).map((document) => document.toJS() as Manifest);
  });

  after(async function () {
    await plane?.stop();
  });

  it('renders with kustomize into the CRD, namespace, RBAC, Deployment, Service, PDB and NetworkPolicy', function () {
    expect(rendered.map((object) => object.kind).sort()).to.deep.equal([
      'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Deployment', 'Namespace',
      'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount',
    ]);
  });

  it('creates every rendered object with server-side dry run', async function () {
    const config = plane.adminKubeConfig();
    // Namespaced objects can be dry-run only into a namespace that exists.
    await createObjects(config, rendered.filter((object) => object.kind === 'Namespace'));
    const client = await KubeRestClient.create(config, { timeoutMs: 10_000 });
    try {
      for (const object of rendered.filter((candidate) => candidate.kind !== 'Namespace')) {
        const base = object.apiVersion.includes('/') ? `/apis/${object.apiVersion}` : `/api/${object.apiVersion}`;
        const { resources } = await client.request<{ resources: { name: string; kind: string; namespaced: boolean }[] }>('GET', base);
        const resource = resources.find((candidate) => candidate.kind === object.kind && !candidate.name.includes('/'))!;
        const path = resource.namespaced ? `${base}/namespaces/${object.metadata.namespace}/${resource.name}` : `${base}/${resource.name}`;
        const created = await client.request<Manifest>('POST', `${path}?dryRun=All&fieldValidation=Strict`, object);
        expect(created.metadata.name, `${object.kind} ${object.metadata.name}`).to.equal(object.metadata.name);
      }
    } finally {
      client.close();
    }
  });

  it('runs the webhook hardened: non-root, read-only, no privilege escalation, all capabilities dropped, limits, probes', function () {
    const deployment = rendered.find((object) => object.kind === 'Deployment') as unknown as {
      spec: { replicas: number; template: { spec: { securityContext: Record<string, unknown>; containers: Record<string, any>[] } } };
    };
    const [container] = deployment.spec.template.spec.containers;
    expect(deployment.spec.replicas).to.equal(2);
    expect(deployment.spec.template.spec.securityContext).to.include({ runAsNonRoot: true });
    expect(container!.securityContext).to.deep.include({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(container!.resources.limits).to.have.property('memory');
    expect(container!.readinessProbe.httpGet.path).to.equal('/readyz');
    const env = Object.fromEntries((container!.env as { name: string; value: string }[]).map((entry) => [entry.name, entry.value]));
    expect(env).to.include.keys('HOOK_BEARER_TOKEN_FILE', 'TLS_CERT_FILE', 'TLS_KEY_FILE');
  });

  it('wires every hook of the CompositeController over HTTPS with a bearer token, at version v2, to a served path', async function () {
    const [controller] = await manifestsIn('metacontroller/compositecontroller.yaml');
    const spec = controller!.spec as {
      childResources: { resource: string; updateStrategy: { method: string } }[];
      hooks: Record<string, { version: string; webhook: Record<string, any> }>;
      endpointConfigs: { host: string; caBundle: { secretRef: Record<string, string> }; authorization: Record<string, string> }[];
    };
    expect(spec.childResources).to.deep.equal([{ apiVersion: 'v1', resource: 'secrets', updateStrategy: { method: 'InPlace' } }]);
    expect(Object.keys(spec.hooks).sort()).to.deep.equal(['customize', 'finalize', 'sync']);
    const service = rendered.find((object) => object.kind === 'Service') as unknown as { metadata: Manifest['metadata']; spec: { ports: { port: number }[] } };
    for (const [name, hook] of Object.entries(spec.hooks)) {
      expect(hook.version).to.equal('v2');
      expect(hook.webhook.path).to.equal(`/${name}`);
      expect(hook.webhook.service).to.deep.equal({ name: service.metadata.name, namespace: service.metadata.namespace, port: service.spec.ports[0]!.port, protocol: 'https' });
      // TLS and authorization are said once, for the host every hook calls (endpointConfigs).
      expect(hook.webhook).to.not.have.any.keys('caBundle', 'authorization', 'clientTLS');
    }
    const [endpoint] = spec.endpointConfigs;
    expect(spec.endpointConfigs).to.have.length(1);
    expect(endpoint!.host).to.equal(`${service.metadata.name}.${service.metadata.namespace}:${service.spec.ports[0]!.port}`);
    expect(endpoint!.authorization).to.deep.include({ type: 'Bearer' });
    expect(endpoint!.caBundle.secretRef).to.include({ key: 'ca.crt' });
  });

  it('alerts only on metrics the webhook exports', async function () {
    const [rule] = await manifestsIn('deploy/monitoring/prometheusrule.yaml');
    const exported = new Set((await new Metrics().registry.getMetricsAsJSON()).map((metric) => metric.name));
    const groups = (rule!.spec as { groups: { rules: { expr: string }[] }[] }).groups;
    const used = groups.flatMap((group) => group.rules.flatMap((r) => r.expr.match(/dpu_credential_\w+/g) ?? []));
    expect(used).to.not.be.empty;
    for (const name of used) expect(exported, name).to.include(name.replace(/(_bucket|_count|_sum)$/, ''));
  });

  it('ships a DPUCluster CRD that the API server accepts (for clusters without DPF)', async function () {
    const crd = parse(await readFile(join(root, 'deploy/dpucluster-crd/dpuclusters.provisioning.dpu.nvidia.com.yaml'), 'utf8')) as Manifest;
    await createObjects(plane.adminKubeConfig(), [crd]);
  });
});
