// The shipped manifests: deploy/ rendered with kustomize (kubectl's) and every object created
// with server-side dry run against a real API server; the rest checked against the code.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { defaultClientSubject, loadConfig } from '../../server/config.js';
import { Metrics } from '../../server/metrics.js';
import { KubeRestClient } from '../../server/kube/rest.js';
import { envtestAssetsDir } from '../../harness/assets.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { createObjects } from '../../harness/kube-helpers.js';
import { controlPlaneStartTimeoutMs } from '../../harness/webhook-env.js';
import { connectionOf } from '../../harness/connection.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}

async function manifestsIn(path: string): Promise<Manifest[]> {
  return parseAllDocuments(await readFile(join(root, path), 'utf8')).map((document) => document.toJS() as Manifest);
}

/** `kubectl kustomize` of a folder, with the kubectl built beside the control plane. */
async function kustomize(dir: string): Promise<Manifest[]> {
  const { stdout } = await run(join(await envtestAssetsDir(), 'kubectl'), ['kustomize', dir]);
  return parseAllDocuments(stdout).map((document) => document.toJS() as Manifest);
}

interface PodTemplateOwner {
  metadata: Manifest['metadata'];
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: {
      terminationGracePeriodSeconds: number;
      containers: {
        image: string;
        env: { name: string; value: string }[];
        lifecycle?: { preStop?: { sleep?: { seconds: number } } };
      }[];
    } };
  };
}

interface ServiceManifest {
  metadata: Manifest['metadata'];
  spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] };
}

interface PeerSelector {
  namespaceSelector?: { matchLabels: Record<string, string> };
  podSelector?: { matchLabels: Record<string, string> };
}

interface NetworkPolicyManifest {
  spec: { policyTypes: string[]; ingress: { from?: PeerSelector[]; ports?: { port: string | number; protocol: string }[] }[] };
}

interface ContainerPorts {
  env: { name: string; value: string }[];
  ports: { name: string; containerPort: number }[];
}

const packageVersion = async () => (JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string }).version;

/** Kubernetes' recommended labels, as deploy/ and metacontroller/ set them. */
const recommendedLabels = async () => ({
  'app.kubernetes.io/name': 'dpu-credential-webhook',
  'app.kubernetes.io/instance': 'dpu-credential-webhook',
  'app.kubernetes.io/version': await packageVersion(),
  'app.kubernetes.io/component': 'webhook',
  'app.kubernetes.io/part-of': 'doca-platform-framework',
  'app.kubernetes.io/managed-by': 'kustomize',
});
const selectorLabels = { 'app.kubernetes.io/name': 'dpu-credential-webhook' };

describe('deploy/ and metacontroller/ manifests', function () {
  let plane: ControlPlane;
  let rendered: Manifest[];

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'manifests' });
    rendered = await kustomize(join(root, 'deploy'));
  });

  after(async function () {
    await plane?.stop();
  });

  it('renders with kustomize into the CRD, namespace, RBAC, Deployment, Service, PDB, NetworkPolicy and the five admission policies', function () {
    expect(rendered.map((object) => object.kind).sort()).to.deep.equal([
      'ClusterRole', 'ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Deployment', 'Namespace',
      'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount',
      'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicyBinding',
      'ValidatingAdmissionPolicyBinding',
    ]);
    expect(rendered.filter((object) => object.kind === 'ValidatingAdmissionPolicy').map((object) => object.metadata.name).sort()).to.deep.equal([
      'dpu-credential-managed-labels', 'dpu-credential-references', 'dpu-credential-request-status', 'dpu-credential-selector-label', 'dpu-credential-webhook-identity',
    ]);
  });

  it('creates every rendered object with server-side dry run', async function () {
    const config = plane.adminKubeConfig();
    // Namespaced objects can be dry-run only into a namespace that exists.
    await createObjects(config, rendered.filter((object) => object.kind === 'Namespace'));
    const client = new KubeRestClient(connectionOf(config), { timeoutMs: 10_000 });
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

  it('labels every object and pod with the recommended app.kubernetes.io labels, and leaves every selector as it was', async function () {
    const labels = await recommendedLabels();
    for (const object of rendered) expect(object.metadata.labels, `${object.kind} ${object.metadata.name}`).to.include(labels);
    const deployment = rendered.find((object) => object.kind === 'Deployment') as unknown as PodTemplateOwner;
    expect(deployment.spec.template.metadata.labels).to.include(labels);

    // A Deployment's selector is immutable: a label added to it would make an upgrade fail.
    const [sourceDeployment] = await manifestsIn('deploy/deployment.yaml') as unknown as PodTemplateOwner[];
    const [sourceService] = await manifestsIn('deploy/service.yaml') as unknown as ServiceManifest[];
    const service = rendered.find((object) => object.kind === 'Service') as unknown as ServiceManifest;
    expect(deployment.spec.selector.matchLabels).to.deep.equal(sourceDeployment!.spec.selector.matchLabels).and.to.deep.equal(selectorLabels);
    expect(service.spec.selector).to.deep.equal(sourceService!.spec.selector).and.to.deep.equal(selectorLabels);
    const selectorOf = (kind: string) => (rendered.find((object) => object.kind === kind)!.spec as { selector?: { matchLabels: unknown }; podSelector?: { matchLabels: unknown } });
    expect(selectorOf('PodDisruptionBudget').selector!.matchLabels).to.deep.equal(selectorLabels);
    expect(selectorOf('NetworkPolicy').podSelector!.matchLabels).to.deep.equal(selectorLabels);
  });

  it('runs the image named in kustomize\'s images entry, which an overlay points at a registry', async function () {
    const imageOf = (objects: Manifest[]) => (objects.find((object) => object.kind === 'Deployment') as unknown as PodTemplateOwner).spec.template.spec.containers[0]!.image;
    const kustomization = parse(await readFile(join(root, 'deploy/kustomization.yaml'), 'utf8')) as { images: { name: string; newTag: string }[] };
    expect(kustomization.images).to.deep.equal([{ name: 'dpu-credential-webhook', newTag: await packageVersion() }]);
    expect(imageOf(rendered)).to.equal(`dpu-credential-webhook:${await packageVersion()}`);

    // What `kustomize edit set image dpu-credential-webhook=registry.example/dpu/webhook:1.2.3` writes in an overlay.
    const overlay = await mkdtemp(join(tmpdir(), 'overlay-'));
    try {
      await writeFile(join(overlay, 'kustomization.yaml'), [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        `resources: [${relative(overlay, join(root, 'deploy'))}]`,
        'images: [{ name: dpu-credential-webhook, newName: registry.example/dpu/webhook, newTag: "1.2.3" }]',
      ].join('\n'));
      expect(imageOf(await kustomize(overlay))).to.equal('registry.example/dpu/webhook:1.2.3');
    } finally {
      await rm(overlay, { recursive: true, force: true });
    }
  });

  it('renders metacontroller/ with kustomize into the CompositeController as written, with the same labels as deploy/', async function () {
    const [written] = await manifestsIn('metacontroller/compositecontroller.yaml');
    const objects = await kustomize(join(root, 'metacontroller'));
    expect(objects.map((object) => `${object.apiVersion} ${object.kind} ${object.metadata.name}`)).to.deep.equal([
      `metacontroller.k8s.io/v1alpha1 CompositeController ${written!.metadata.name}`,
    ]);
    expect(objects[0]!.spec).to.deep.equal(written!.spec);
    expect(objects[0]!.metadata.labels).to.deep.equal(await recommendedLabels());
  });

  it('drains before it stops: a preStop sleep, then a grace period that covers it and the server\'s shutdown timeout', function () {
    const pod = (rendered.find((object) => object.kind === 'Deployment') as unknown as PodTemplateOwner).spec.template.spec;
    const [container] = pod.containers;
    const preStopSeconds = container!.lifecycle?.preStop?.sleep?.seconds ?? 0;
    const shutdownSeconds = Number(container!.env.find((entry) => entry.name === 'SHUTDOWN_TIMEOUT_MS')!.value) / 1_000;
    expect(preStopSeconds).to.be.at.least(5);
    // The kubelet counts the grace period from the start of preStop; SIGKILL at its end.
    expect(pod.terminationGracePeriodSeconds).to.be.above(preStopSeconds + shutdownSeconds);
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
    // No customize: the webhook watches DPUClusters itself (related resources would fan every DPUCluster update out).
    expect(Object.keys(spec.hooks).sort()).to.deep.equal(['finalize', 'sync']);
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

  it('lets the webhook list and watch DPUClusters (its cache), and still only get, create and delete Secrets', function () {
    const binding = rendered.find((object) => object.kind === 'ClusterRoleBinding') as unknown as { roleRef: { name: string } };
    const role = rendered.find((object) => object.kind === 'ClusterRole' && object.metadata?.name === binding.roleRef.name) as unknown as {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    const verbsOn = (group: string, resource: string) =>
      role.rules.filter((rule) => rule.apiGroups.includes(group) && rule.resources.includes(resource)).flatMap((rule) => rule.verbs).sort();
    expect(verbsOn('provisioning.dpu.nvidia.com', 'dpuclusters')).to.deep.equal(['get', 'list', 'watch']);
    expect(verbsOn('', 'secrets')).to.deep.equal(['create', 'delete', 'get']);
  });

  it('alerts only on metrics the webhook exports', async function () {
    const [rule] = await manifestsIn('deploy/monitoring/prometheusrule.yaml');
    const exported = new Set(await new Metrics().metricNames());
    const groups = (rule!.spec as { groups: { rules: { expr: string }[] }[] }).groups;
    const used = groups.flatMap((group) => group.rules.flatMap((r) => r.expr.match(/dpu_credential_\w+/g) ?? []));
    expect(used).to.not.be.empty;
    for (const name of used) expect(exported, name).to.include(name.replace(/(_bucket|_count|_sum)$/, ''));
  });

  it('scrapes the Service\'s metrics port over plain HTTP, not the hook port, keeping the metrics\' own namespace label', async function () {
    const [monitor] = await manifestsIn('deploy/monitoring/servicemonitor.yaml');
    const spec = monitor!.spec as {
      selector: { matchLabels: Record<string, string> };
      namespaceSelector: { matchNames: string[] };
      endpoints: { port: string; scheme: string; path: string; honorLabels: boolean; tlsConfig?: unknown }[];
    };
    const service = rendered.find((object) => object.kind === 'Service') as unknown as ServiceManifest;
    expect(monitor!.kind).to.equal('ServiceMonitor');
    expect(service.metadata.labels).to.include(spec.selector.matchLabels);
    expect(spec.namespaceSelector.matchNames).to.deep.equal([service.metadata.namespace]);
    const [endpoint] = spec.endpoints;
    expect(spec.endpoints).to.have.length(1);
    expect(endpoint).to.deep.equal({ port: 'metrics', scheme: 'http', path: '/metrics', honorLabels: true });
    expect(service.spec.ports.find((port) => port.name === endpoint!.port)).to.include({ targetPort: 'metrics' });
  });

  it('serves the hooks and /metrics on two container ports, each named by the Service and set by PORT and METRICS_PORT', async function () {
    const deployment = rendered.find((object) => object.kind === 'Deployment') as unknown as { spec: { template: { spec: { containers: ContainerPorts[] } } } };
    const [container] = deployment.spec.template.spec.containers;
    const env = Object.fromEntries(container!.env.map((entry) => [entry.name, entry.value]));
    expect(container!.ports).to.deep.equal([
      { name: 'https', containerPort: Number(env.PORT) },
      { name: 'metrics', containerPort: Number(env.METRICS_PORT) },
    ]);
    // The shipped settings start without ALLOW_INSECURE_HOOKS: HTTPS and the hook token.
    expect(loadConfig(env)).to.include({ port: Number(env.PORT), metricsPort: Number(env.METRICS_PORT), allowInsecureHooks: false });
    const service = rendered.find((object) => object.kind === 'Service') as unknown as ServiceManifest;
    expect(service.spec.ports.map((port) => [port.name, port.targetPort])).to.deep.equal([['https', 'https'], ['metrics', 'metrics']]);
    // Metacontroller calls the Service port whose target is the hook port.
    const [controller] = await manifestsIn('metacontroller/compositecontroller.yaml');
    const hookPort = (controller!.spec as { hooks: { sync: { webhook: { service: { port: number } } } } }).hooks.sync.webhook.service.port;
    expect(service.spec.ports.find((port) => port.port === hookPort)).to.include({ targetPort: 'https' });
  });

  it('admits the hook port only from Metacontroller\'s pods and the metrics port only from the monitoring namespace', function () {
    const policy = rendered.find((object) => object.kind === 'NetworkPolicy') as unknown as NetworkPolicyManifest;
    expect(policy.spec.policyTypes).to.deep.equal(['Ingress']);
    // A rule without ports would admit its peers to every port, the hook port included.
    for (const rule of policy.spec.ingress) expect(rule.ports, 'every rule names its ports').to.be.an('array').that.is.not.empty;
    const peersOf = (portName: string) => policy.spec.ingress
      .filter((rule) => rule.ports!.some((port) => port.port === portName))
      .flatMap((rule) => rule.from ?? [{}]);
    expect(peersOf('https')).to.deep.equal([{
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'metacontroller' } },
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'metacontroller' } },
    }]);
    expect(peersOf('metrics')).to.deep.equal([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    const named = policy.spec.ingress.flatMap((rule) => rule.ports!.map((port) => port.port));
    expect(named.sort()).to.deep.equal(['https', 'metrics']);
  });

  it('issues the serving certificate for server auth only, and the client certificate for client auth under the subject the webhook requires', async function () {
    const serving = (await manifestsIn('deploy/cert-manager/certificate.yaml'))
      .find((object) => object.kind === 'Certificate' && object.metadata.name === 'dpu-credential-webhook')!;
    expect((serving.spec as { usages: string[] }).usages).to.deep.equal(['server auth', 'digital signature']);
    const [client] = await manifestsIn('deploy/cert-manager/client-certificate.yaml');
    expect(client!.spec).to.deep.include({ commonName: defaultClientSubject, usages: ['client auth', 'digital signature'] });
  });

  it('ships a DPUCluster CRD that the API server accepts (for clusters without DPF)', async function () {
    const crd = parse(await readFile(join(root, 'deploy/dpucluster-crd/dpuclusters.provisioning.dpu.nvidia.com.yaml'), 'utf8')) as Manifest;
    await createObjects(plane.adminKubeConfig(), [crd]);
  });
});
