// The Helm chart (chart/dpu-credential-webhook) with a real helm: lint, what it renders under
// its values, names written from the release, and deploy/ rendered from it without drift.
// Installing, upgrading and uninstalling it: chart-install.e2e.spec.ts.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { chartDir, renderDeploy, repoRoot } from '../../scripts/render-deploy.js';
import { chart0_3Commit, helm } from '../../harness/helm.js';
import { connectionSettingsFor, webhookUrl, type CompositeController } from '../../harness/metacontroller/controller-spec.js';

const run = promisify(execFile);
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
  type?: string;
}

describe('the Helm chart (chart/dpu-credential-webhook)', function () {
  this.timeout(120_000);
  let home: string;

  const template = async (values: string[] = [], release = 'dpu-credential-webhook', namespace = 'dpu-credential-webhook'): Promise<Manifest[]> => {
    const stdout = await helm(['template', release, chartDir, '--namespace', namespace, ...values], { home });
    return parseAllDocuments(stdout).map((document) => document.toJS() as Manifest | null).filter((object): object is Manifest => object !== null);
  };
  const find = (objects: Manifest[], kind: string, name?: string) => {
    const found = objects.find((object) => object.kind === kind && (name === undefined || object.metadata.name === name));
    if (!found) throw new Error(`no ${kind} ${name ?? ''} rendered`);
    return found;
  };
  const kinds = (objects: Manifest[]) => objects.map((object) => object.kind).sort();

  before(async function () {
    home = await mkdtemp(join(tmpdir(), 'chart-helm-'));
  });

  after(async function () {
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('passes helm lint --strict with its default values and with the values deploy/ is rendered from', async function () {
    for (const values of [[], ['--values', join(repoRoot, 'chart/deploy-values.yaml')]]) {
      const stdout = await helm(['lint', '--strict', chartDir, ...values], { home });
      expect(stdout).to.include('1 chart(s) linted, 0 chart(s) failed');
    }
  });

  it('renders on the 0.3.0 chart\'s values alone, as helm upgrade --reuse-values does (it drops the new chart\'s defaults): the same kinds, the Job without limits', async function () {
    const chart = join(home, 'reuse-values');
    await cp(chartDir, chart, { recursive: true });
    await writeFile(join(chart, 'values.yaml'), (await run('git', ['show', `${chart0_3Commit}:chart/dpu-credential-webhook/values.yaml`], { cwd: repoRoot })).stdout);
    const stdout = await helm(['template', 'dpu-credential-webhook', chart, '--namespace', 'dpu-credential-webhook'], { home });
    const objects = parseAllDocuments(stdout).map((document) => document.toJS() as Manifest | null).filter((object): object is Manifest => object !== null);
    expect(kinds(objects)).to.deep.equal(kinds(await template()));
    expect(find(objects, 'Job').spec.template.spec.containers[0].resources).to.equal(undefined);
  });

  it('renders by default the whole install: CRD, RBAC, Deployment, Service, PDB, NetworkPolicy, admission policies, CompositeController and the bootstrap Job with its RBAC', async function () {
    const objects = await template();
    expect(kinds(objects)).to.deep.equal([
      'ClusterRole', 'ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'CompositeController', 'CustomResourceDefinition', 'Deployment',
      'Job', 'NetworkPolicy', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount', 'ServiceAccount',
      'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicyBinding',
      'ValidatingAdmissionPolicyBinding',
    ]);
    expect(find(objects, 'Deployment').spec.template.spec.containers[0].image).to.equal('dpu-credential-webhook:0.3.0');
    // helm uninstall must not delete the CRD: every request, and through GC every Secret, would go with it.
    expect(find(objects, 'CustomResourceDefinition').metadata.annotations).to.deep.equal({ 'helm.sh/resource-policy': 'keep' });
    expect(find(objects, 'Deployment').metadata.labels).to.include({
      'app.kubernetes.io/name': 'dpu-credential-webhook', 'app.kubernetes.io/instance': 'dpu-credential-webhook',
      'app.kubernetes.io/version': '0.3.0', 'app.kubernetes.io/managed-by': 'Helm',
    });
  });

  it('renders no key material: two renders are byte-identical and hold no PEM, no key and no token (helm template, Argo CD, Flux)', async function () {
    const render = () => helm(['template', 'dpu-credential-webhook', chartDir, '--namespace', 'dpu-credential-webhook'], { home });
    const [first, second] = [await render(), await render()];
    expect(second).to.equal(first);
    expect(first).to.not.match(/-----BEGIN|PRIVATE KEY|LS0tLS1CRUdJTi/);
    const objects = await template();
    expect(objects.filter((object) => object.kind === 'Secret')).to.deep.equal([]);
    for (const values of [['--set', 'tls.source=cert-manager'], ['--set', 'tls.source=external', '--set', 'hookToken.generate=false'],
      ['--values', join(repoRoot, 'chart/deploy-values.yaml')]]) {
      expect(await helm(['template', 'dpu-credential-webhook', chartDir, '--namespace', 'dpu-credential-webhook', ...values], { home }), values.join(' '))
        .to.not.match(/-----BEGIN|PRIVATE KEY|LS0tLS1CRUdJTi/);
    }
  });

  it('runs the bootstrap Job before install and upgrade, after its RBAC, from the webhook\'s image under the restricted Pod security profile, outside the webhook\'s selector', async function () {
    const objects = await template();
    const job = find(objects, 'Job', 'dpu-credential-webhook-bootstrap');
    expect(job.metadata.annotations).to.deep.equal({
      'helm.sh/hook': 'pre-install,pre-upgrade', 'helm.sh/hook-weight': '0', 'helm.sh/hook-delete-policy': 'before-hook-creation',
    });
    for (const kind of ['ServiceAccount', 'Role', 'RoleBinding']) {
      expect(find(objects, kind, 'dpu-credential-webhook-bootstrap').metadata.annotations, kind).to.include({
        'helm.sh/hook': 'pre-install,pre-upgrade', 'helm.sh/hook-weight': '-10',
      });
    }
    const pod = job.spec.template;
    const deployment = find(objects, 'Deployment').spec.template.spec;
    const container = pod.spec.containers[0];
    expect(container.image).to.equal(deployment.containers[0].image);
    expect(container.args).to.deep.equal(['--enable-source-maps', 'dist/server/bootstrap.js']);
    expect(pod.spec.securityContext).to.deep.equal(deployment.securityContext);
    expect(container.securityContext).to.deep.equal({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.spec.serviceAccountName).to.equal('dpu-credential-webhook-bootstrap');
    // The Service and the PodDisruptionBudget select the webhook's Pods only.
    const selector = find(objects, 'Service').spec.selector as Record<string, string>;
    expect(Object.entries(selector).every(([key, value]) => pod.metadata.labels[key] === value)).to.equal(false);
    const env = Object.fromEntries(container.env.map((entry: { name: string; value: string }) => [entry.name, entry.value]));
    const host = 'dpu-credential-webhook.dpu-credential-webhook';
    expect(env).to.deep.equal({
      BOOTSTRAP_NAMESPACE: 'dpu-credential-webhook', LOG_LEVEL: 'info', HOOK_TOKEN_SECRET: 'dpu-credential-webhook-hook-token',
      CA_SECRET: 'dpu-credential-webhook-ca', TLS_SECRET: 'dpu-credential-webhook-tls', TLS_DNS_NAMES: `${host},${host}.svc,${host}.svc.cluster.local`,
      CA_VALIDITY_DAYS: '3650', SERVING_VALIDITY_DAYS: '365', RENEW_BEFORE_DAYS: '120',
    });
    // get and update on its own Secrets by name; create cannot be bound by name in RBAC (docs/security.md).
    expect((find(objects, 'Role', 'dpu-credential-webhook-bootstrap') as unknown as { rules: unknown }).rules).to.deep.equal([
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['dpu-credential-webhook-hook-token', 'dpu-credential-webhook-ca', 'dpu-credential-webhook-tls'], verbs: ['get', 'update'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    ]);
  });

  it('takes the certificates from cert-manager with tls.source=cert-manager: its Issuers and Certificates instead of generated Secrets', async function () {
    const objects = await template(['--set', 'tls.source=cert-manager']);
    // The bootstrap Job makes the token alone.
    const bootstrapEnv = (rendered: Manifest[]) => Object.fromEntries(find(rendered, 'Job').spec.template.spec.containers[0].env
      .map((entry: { name: string; value: string }) => [entry.name, entry.value]));
    expect(Object.keys(bootstrapEnv(objects))).to.deep.equal(['BOOTSTRAP_NAMESPACE', 'LOG_LEVEL', 'HOOK_TOKEN_SECRET']);
    expect(objects.filter((object) => object.apiVersion === 'cert-manager.io/v1').map((object) => `${object.kind} ${object.metadata.name}`).sort()).to.deep.equal([
      'Certificate dpu-credential-webhook', 'Certificate dpu-credential-webhook-ca', 'Issuer dpu-credential-webhook-ca', 'Issuer dpu-credential-webhook-selfsigned',
    ]);
    const serving = find(objects, 'Certificate', 'dpu-credential-webhook').spec;
    expect(serving.dnsNames.join(',')).to.equal(bootstrapEnv(await template()).TLS_DNS_NAMES);
    expect(serving.secretName).to.equal('dpu-credential-webhook-tls');
    expect(find(objects, 'Certificate', 'dpu-credential-webhook-ca').spec).to.include({ isCA: true, secretName: 'dpu-credential-webhook-ca' });
    // Neither generated nor from cert-manager: the Secrets are the installer's.
    expect(kinds(await template(['--set', 'tls.source=external', '--set', 'hookToken.generate=false']))).to.not.include('Job').and.to.not.include('Certificate')
      .and.to.not.include('Role');
  });

  it('adds the ServiceMonitor, the alerts and the quick-view rules only with monitoring.enabled=true', async function () {
    const monitoring = (objects: Manifest[]) => objects.filter((object) => object.apiVersion === 'monitoring.coreos.com/v1')
      .map((object) => `${object.kind} ${object.metadata.name}`).sort();
    expect(monitoring(await template())).to.deep.equal([]);
    const objects = await template(['--set', 'monitoring.enabled=true']);
    expect(monitoring(objects)).to.deep.equal([
      'PrometheusRule dpu-credential-webhook', 'PrometheusRule dpu-credential-webhook-quick-view', 'ServiceMonitor dpu-credential-webhook',
    ]);
    // Prometheus' own template syntax reaches the rule as written, not evaluated by helm.
    const alert = find(objects, 'PrometheusRule', 'dpu-credential-webhook').spec.groups[0].rules[0];
    expect(alert.annotations.summary).to.include('{{ $labels.namespace }}/{{ $labels.name }}');
  });

  it('adds the MutatingAdmissionPolicy for Metacontroller\'s finalizer where the API server serves it (auto), always with true, never with false', async function () {
    const policies = (objects: Manifest[]) => objects.filter((object) => object.kind.startsWith('MutatingAdmissionPolicy')).map((object) => object.kind);
    const served = ['--api-versions', 'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy'];
    expect(policies(await template())).to.deep.equal([]);
    expect(policies(await template(served))).to.deep.equal(['MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding']);
    expect(policies(await template(['--set', 'metacontrollerFinalizer.policy=true']))).to.have.length(2);
    expect(policies(await template([...served, '--set', 'metacontrollerFinalizer.policy=false']))).to.deep.equal([]);
    // The finalizer it adds is the one Metacontroller derives from the CompositeController's name.
    const objects = await template(served);
    const finalizer = `metacontroller.io/compositecontroller-${find(objects, 'CompositeController').metadata.name}`;
    const policy = find(objects, 'MutatingAdmissionPolicy');
    expect(policy.spec.mutations[0].applyConfiguration.expression).to.include(`finalizers: ['${finalizer}']`);
    expect(policy.spec.matchConditions[0].expression).to.include(`'${finalizer}' in object.metadata.finalizers`);
    expect(policy.spec.matchConstraints.resourceRules[0].operations).to.deep.equal(['CREATE']);
  });

  it('grants DPF\'s operator namespace `use` on DPUClusters only with dpf.operatorNamespace: cluster-wide, or in the dpf.dpuClusterNamespaces listed', async function () {
    type Binding = Manifest & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string }[] };
    const groupBindings = (objects: Manifest[]) => (objects.filter((object) => object.kind.endsWith('RoleBinding')) as Binding[])
      .filter((binding) => binding.subjects.some((subject) => subject.kind === 'Group'));
    // By default nothing is granted to any namespace's requests, and deploy/ (kustomize) grants nothing either.
    expect(groupBindings(await template())).to.deep.equal([]);
    expect(groupBindings(await template(['--values', join(repoRoot, 'chart/deploy-values.yaml')]))).to.deep.equal([]);

    const objects = await template(['--set', 'dpf.operatorNamespace=dpf-operator-system']);
    const role = find(objects, 'ClusterRole', 'dpu-credential-webhook-dpf-dpuclusters') as Manifest & { rules: unknown[] };
    expect(role.rules).to.deep.equal([{ apiGroups: ['provisioning.dpu.nvidia.com'], resources: ['dpuclusters'], verbs: ['use'] }]);
    expect(role.metadata.labels, 'not aggregated into admin or anything else').to.not.have.property('rbac.authorization.k8s.io/aggregate-to-admin');
    expect(groupBindings(objects).map(({ kind, metadata, roleRef, subjects }) => ({ kind, namespace: metadata.namespace, role: roleRef.name, subjects })))
      .to.deep.equal([{
        kind: 'ClusterRoleBinding', namespace: undefined, role: 'dpu-credential-webhook-dpf-dpuclusters',
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:serviceaccounts:dpf-operator-system' }],
      }]);

    const narrowed = await template(['--set', 'dpf.operatorNamespace=dpf-operator-system', '--set', 'dpf.dpuClusterNamespaces={dpu-cplane-tenant1,dpu-cplane-tenant2}']);
    expect(groupBindings(narrowed).map(({ kind, metadata }) => `${kind} ${metadata.namespace}`))
      .to.deep.equal(['RoleBinding dpu-cplane-tenant1', 'RoleBinding dpu-cplane-tenant2']);
    // A value that is no namespace name (a comma list, a group) renders nothing.
    const refused = await template(['--set', 'dpf.operatorNamespace=a\\,b']).then(() => undefined, (error: Error) => error);
    expect(refused?.message).to.include('dpf.operatorNamespace "a,b" is not a namespace name');
  });

  it('writes every name Metacontroller and the policies rely on from the release, its namespace and where Metacontroller runs', async function () {
    const namespace = 'dpu-system';
    const objects = await template([
      '--set', 'metacontroller.namespace=mc', '--set', 'metacontroller.podLabels.app\\.kubernetes\\.io/name=metacontroller-helm',
      '--set', 'metacontroller.podLabels.app\\.kubernetes\\.io/instance=mc', '--set', 'metacontroller.serviceAccount=mc-metacontroller-helm',
    ], 'creds', namespace);
    const fullname = 'creds-dpu-credential-webhook';
    const service = find(objects, 'Service', fullname);
    const controller = find(objects, 'CompositeController') as unknown as CompositeController;
    // What the bootstrap Job makes, in the release's namespace: the names the CompositeController reads.
    const job = find(objects, 'Job', `${fullname}-bootstrap`);
    expect(job.metadata.namespace).to.equal(namespace);
    const jobEnv = Object.fromEntries(job.spec.template.spec.containers[0].env.map((entry: { name: string; value: string }) => [entry.name, entry.value]));
    expect(jobEnv.BOOTSTRAP_NAMESPACE).to.equal(namespace);
    for (const [name, hook] of Object.entries(controller.spec.hooks)) {
      // The URL and connection settings as Metacontroller builds them.
      const url = new URL(webhookUrl(hook.webhook));
      expect(url.hostname, name).to.equal(`${service.metadata.name}.${namespace}`);
      expect(Number(url.port || 443)).to.equal(service.spec.ports[0].port);
      const settings = connectionSettingsFor(hook.webhook, controller.spec.endpointConfigs);
      expect(settings!.caBundle!.secretRef).to.include({ name: jobEnv.CA_SECRET, namespace });
      expect(settings!.authorization!.secretRef).to.include({ name: jobEnv.HOOK_TOKEN_SECRET, namespace });
      expect(jobEnv.TLS_DNS_NAMES.split(',')[0], `${name}: the certificate names ${url.hostname} first`).to.equal(url.hostname);
    }
    expect(jobEnv.TLS_SECRET).to.equal(`${fullname}-tls`);
    const deployment = find(objects, 'Deployment', fullname);
    const pod = deployment.spec.template.spec;
    expect(pod.volumes.map((volume: { secret: { secretName: string } }) => volume.secret.secretName).sort())
      .to.deep.equal([`${fullname}-hook-token`, `${fullname}-tls`]);
    expect(pod.serviceAccountName).to.equal(find(objects, 'ServiceAccount').metadata.name);
    const env = Object.fromEntries(pod.containers[0].env.map((entry: { name: string; value: string }) => [entry.name, entry.value]));
    expect(env.PROTECTED_NAMESPACES).to.equal(`mc,${namespace}`);
    const identity = find(objects, 'ValidatingAdmissionPolicy', 'dpu-credential-webhook-identity').spec;
    expect(identity.matchConditions[0].expression).to.equal(`request.userInfo.username == 'system:serviceaccount:${namespace}:${pod.serviceAccountName}'`);
    // Only the webhook's own ServiceAccount may relabel what it made or make token anchors.
    expect(find(objects, 'ValidatingAdmissionPolicy', 'dpu-credential-managed-labels').spec.matchConditions[0].expression)
      .to.equal(`request.userInfo.username != 'system:serviceaccount:${namespace}:${pod.serviceAccountName}'`);
    expect(identity.variables.find((variable: { name: string }) => variable.name === 'protectedNamespace').expression).to.include(`['mc', '${namespace}']`);
    expect(JSON.stringify(find(objects, 'ValidatingAdmissionPolicy', 'dpu-credential-references').spec.validations[0])).to.include(`['mc', '${namespace}']`);
    // Only Metacontroller's ServiceAccount may write a request's status or a Secret's controller-uid label.
    for (const name of ['dpu-credential-request-status', 'dpu-credential-selector-label']) {
      expect(find(objects, 'ValidatingAdmissionPolicy', name).spec.matchConditions[0].expression, name)
        .to.equal(`request.userInfo.username != 'system:serviceaccount:mc:mc-metacontroller-helm'`);
    }
    expect((find(objects, 'ClusterRoleBinding') as unknown as { subjects: unknown[] }).subjects).to.deep.equal([{ kind: 'ServiceAccount', name: fullname, namespace }]);
    expect(find(objects, 'NetworkPolicy').spec.ingress[0].from).to.deep.equal([{
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'mc' } },
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'metacontroller-helm', 'app.kubernetes.io/instance': 'mc' } },
    }]);
  });

  it('is what deploy/ and metacontroller/compositecontroller.yaml hold (npm run render:deploy writes them)', async function () {
    const rendered = await renderDeploy();
    expect([...rendered.keys()]).to.include.members(['deploy/deployment.yaml', 'deploy/crd/svc.dpu.nvidia.com_dpuservicecredentialrequests.yaml',
      'deploy/cert-manager/certificate.yaml', 'deploy/monitoring/prometheusrule.yaml', 'metacontroller/compositecontroller.yaml',
      // Not in deploy/kustomization.yaml (Kubernetes 1.36+), applied on its own: docs/install.md, "Installing with kustomize".
      'deploy/admission/metacontroller-finalizer.yaml']);
    for (const [path, content] of rendered) {
      expect(await readFile(join(repoRoot, path), 'utf8'), `${path} differs from the chart: run npm run render:deploy`).to.equal(content);
    }
    // And nothing rendered once is left behind after its template went.
    const deployDir = join(repoRoot, 'deploy');
    const entries = await readdir(deployDir, { withFileTypes: true, recursive: true });
    for (const entry of entries.filter((candidate) => candidate.isFile() && candidate.name.endsWith('.yaml'))) {
      const path = relative(repoRoot, join(entry.parentPath, entry.name));
      if ((await readFile(join(repoRoot, path), 'utf8')).startsWith('# Rendered from chart/')) expect(rendered.has(path), path).to.equal(true);
    }
  });
});
