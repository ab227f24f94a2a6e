// `kubectl explain` on the installed CRD: every field of spec and status says what it is,
// and conditions are a list keyed by type. The fields are walked from the CRD file, so a
// field added later without a description fails here.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { KubeApiError, KubeRestClient } from '../../server/kube/rest.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { createObjects, readManifests } from '../../harness/kube-helpers.js';
import { controlPlaneStartTimeoutMs, requestCrdPath } from '../../harness/webhook-env.js';
import { eventually } from '../../harness/eventually.js';
import { connectionOf } from '../../harness/connection.js';

const run = promisify(execFile);

interface Schema {
  description?: string;
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
}

interface CrdDocument {
  metadata: { name: string };
  spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
}

interface ExplainedField {
  path: string;
  schema: Schema;
}

/** Every field below `schema`, depth first; the fields of an array's items count as the array's. */
function fieldsBelow(schema: Schema, path: string): ExplainedField[] {
  const properties = schema.properties ?? schema.items?.properties ?? {};
  return Object.entries(properties).flatMap(([name, child]) => {
    const childPath = `${path}.${name}`;
    return [{ path: childPath, schema: child }, ...fieldsBelow(child, childPath)];
  });
}

/** kubectl wraps descriptions at 80 columns: compare words, not lines. */
const words = (text: string) => text.trim().split(/\s+/).join(' ');

interface Explanation {
  description: string;
  /** The names under FIELDS: (an object's or an array's items' fields), with their descriptions. */
  fields: Map<string, string>;
}

function parseExplain(stdout: string): Explanation {
  const description = /^DESCRIPTION:\n([\s\S]*?)(?=^FIELDS:|(?![\s\S]))/m.exec(stdout)?.[1] ?? '';
  const fields = new Map<string, string>();
  const listing = /^FIELDS:\n([\s\S]*)$/m.exec(stdout)?.[1] ?? '';
  // "  name\t<type>[ -required-]", an enum line indented by two, the description by four.
  for (const entry of listing.split(/^(?=  \S+\t)/m).filter((block) => block.trim() !== '')) {
    const [heading = '', ...rest] = entry.split('\n');
    const name = heading.trim().split('\t')[0]!;
    fields.set(name, words(rest.filter((line) => !/^  enum: /.test(line)).join('\n')));
  }
  return { description: words(description), fields };
}

describe('kubectl explain dpuservicecredentialrequest', function () {
  let plane: ControlPlane;
  let kubeconfig: string;
  let cacheDir: string;
  let root: Schema;

  const explain = async (path: string): Promise<Explanation> => {
    const { stdout } = await run(plane.kubectlPath, [
      '--kubeconfig', kubeconfig, '--cache-dir', cacheDir, 'explain', `dpuservicecredentialrequest${path}`,
    ]);
    return parseExplain(stdout);
  };

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    const crd = parse(await readFile(requestCrdPath, 'utf8')) as CrdDocument;
    root = crd.spec.versions[0]!.schema.openAPIV3Schema;
    plane = await startControlPlane({ name: 'explain' });
    await createObjects(plane.adminKubeConfig(), await readManifests(requestCrdPath));
    kubeconfig = await plane.writeAdminKubeconfig();
    // A cache of its own: kubectl must read this API server's OpenAPI, not a stale copy.
    cacheDir = await mkdtemp(join(tmpdir(), 'kubectl-cache-'));
    // The API server publishes a CRD's OpenAPI a moment after it is Established.
    await eventually(() => explain('').then(() => true), 'kubectl explain finds the CRD', { timeoutMs: 30_000, intervalMs: 200 });
  });

  after(async function () {
    await plane?.stop();
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  it('describes the kind and each of its top-level fields', async function () {
    const explained = await explain('');
    expect(explained.description).to.equal(words(root.description ?? ''));
    expect([...explained.fields.keys()].sort()).to.deep.equal(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
    for (const [name, description] of explained.fields) expect(description, name).to.not.be.empty;
  });

  it('explains every field of spec and status with the description in the CRD, down to the condition fields', async function () {
    this.timeout(120_000);
    const fields = ['spec', 'status'].flatMap((name) => {
      const schema = root.properties![name]!;
      return [{ path: `.${name}`, schema }, ...fieldsBelow(schema, `.${name}`)];
    });
    // The walk reaches the nested fields, not only the top of spec and status.
    expect(fields.map((field) => field.path)).to.include.members([
      '.spec.serviceAccount.name', '.spec.targetCluster.namespace', '.spec.secret.namespace',
      '.spec.metadata.labels', '.spec.metadata.annotations',
      '.status.issuedAt', '.status.observedGeneration', '.status.conditions.reason', '.status.conditions.lastTransitionTime',
    ]);
    const undocumented = fields.filter((field) => !field.schema.description?.trim()).map((field) => field.path);
    expect(undocumented, 'fields without a description in the CRD').to.deep.equal([]);

    for (const field of fields) {
      const explained = await explain(field.path);
      expect(explained.description, field.path).to.equal(words(field.schema.description!));
      // kubectl lists the same fields the walk visits next, each with its description.
      const children = field.schema.properties ?? field.schema.items?.properties;
      if (children) {
        expect([...explained.fields.keys()].sort(), `fields of ${field.path}`).to.deep.equal(Object.keys(children).sort());
        for (const [name, description] of explained.fields) {
          expect(description, `${field.path}.${name}`).to.equal(words(children[name]!.description!));
        }
      }
    }
  });

  describe('status.conditions', function () {
    let client: KubeRestClient;
    const requestPath = '/apis/svc.dpu.nvidia.com/v1alpha1/namespaces/default/dpuservicecredentialrequests/conditions-by-type';
    const condition = (type: string, reason: string) => ({
      type, status: 'False', reason, message: `${type} is ${reason}`, lastTransitionTime: '2026-05-01T00:00:00Z',
    });

    before(async function () {
      client = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 10_000 });
      await client.request('POST', '/apis/svc.dpu.nvidia.com/v1alpha1/namespaces/default/dpuservicecredentialrequests', {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest',
        metadata: { name: 'conditions-by-type', namespace: 'default' },
        spec: { serviceAccount: { name: 'sa' }, type: 'kubeconfig', secret: { name: 'out' } },
      });
    });

    after(function () {
      client?.close();
    });

    it('is served as a list-map keyed by type', async function () {
      const crd = await client.request<CrdDocument>('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/dpuservicecredentialrequests.svc.dpu.nvidia.com');
      const conditions = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.status!.properties!.conditions!;
      expect(conditions['x-kubernetes-list-type']).to.equal('map');
      expect(conditions['x-kubernetes-list-map-keys']).to.deep.equal(['type']);
    });

    it('takes one condition of each type and refuses a second of the same type', async function () {
      const request = await client.request<{ metadata: { resourceVersion: string } }>('GET', requestPath);
      const withStatus = (conditions: ReturnType<typeof condition>[]) => ({
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest',
        metadata: { name: 'conditions-by-type', namespace: 'default', resourceVersion: request.metadata.resourceVersion },
        status: { conditions },
      });
      let refusal: unknown;
      try {
        await client.request('PUT', `${requestPath}/status`, withStatus([condition('Ready', 'Pending'), condition('Ready', 'InvalidSpec')]));
      } catch (error) {
        refusal = error;
      }
      expect(refusal).to.be.instanceOf(KubeApiError);
      expect((refusal as KubeApiError).statusCode).to.equal(422);
      expect((refusal as KubeApiError).message).to.match(/Duplicate value/);

      const accepted = await client.request<{ status: { conditions: { type: string }[] } }>(
        'PUT', `${requestPath}/status`, withStatus([condition('ServiceAccountReconciled', 'Pending'), condition('Ready', 'Pending')]));
      expect(accepted.status.conditions.map((entry) => entry.type)).to.deep.equal(['ServiceAccountReconciled', 'Ready']);
    });
  });
});
