import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { hostAndPort, renderSecret } from '../../server/credential/render.js';
import { readTokenRecord } from '../../server/credential/token-record.js';
import { testCaPem, tokenRecord, validSpec } from './fixtures.js';

const endpoint = { clusterName: 'dpu-cplane-tenant1', server: 'https://10.0.0.1:6443', caPem: testCaPem };
const decoded = (data: Record<string, string> | undefined, key: string) => Buffer.from(data?.[key] ?? '', 'base64').toString();

describe('renderSecret', function () {
  it('renders a kubeconfig that client-node loads, with the ServiceAccount as user, context and namespace', function () {
    const secret = renderSecret(validSpec(), endpoint, tokenRecord());
    expect(Object.keys(secret.data ?? {})).to.deep.equal(['kubeconfig', 'token']);
    const text = decoded(secret.data, 'kubeconfig');
    const config = new KubeConfig();
    config.loadFromString(text);
    expect(config.getCurrentContext()).to.equal('dpu-01-sa');
    expect(config.getCurrentCluster()).to.include({ name: 'dpu-cplane-tenant1', server: 'https://10.0.0.1:6443' });
    expect(config.getCurrentUser()).to.include({ name: 'dpu-01-sa', token: 'header.payload.signature' });
    expect(config.getContextObject('dpu-01-sa')?.namespace).to.equal('default');
    expect(Buffer.from(config.getCurrentCluster()!.caData!, 'base64').toString()).to.equal(testCaPem);
    expect(parse(text)).to.include({ apiVersion: 'v1', kind: 'Config' });
  });

  it('puts the token beside the kubeconfig too, which names it as a relative tokenFile (client-go re-reads it; the inline token works anywhere)', function () {
    const secret = renderSecret(validSpec(), endpoint, tokenRecord());
    expect(decoded(secret.data, 'token')).to.equal('header.payload.signature');
    const user = (parse(decoded(secret.data, 'kubeconfig')) as { users: { user: Record<string, string> }[] }).users[0]?.user;
    expect(user).to.deep.equal({ token: 'header.payload.signature', tokenFile: 'token' });
  });

  it('renders exactly the four tokenFile keys', function () {
    const secret = renderSecret(validSpec({ type: 'tokenFile' }), endpoint, tokenRecord());
    expect(Object.keys(secret.data ?? {}).sort()).to.deep.equal(['KUBERNETES_CA_DATA', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'TOKEN_FILE']);
    expect(decoded(secret.data, 'TOKEN_FILE')).to.equal('header.payload.signature');
    expect(decoded(secret.data, 'KUBERNETES_SERVICE_HOST')).to.equal('10.0.0.1');
    expect(decoded(secret.data, 'KUBERNETES_SERVICE_PORT')).to.equal('6443');
    expect(decoded(secret.data, 'KUBERNETES_CA_DATA')).to.equal(testCaPem);
  });

  it('writes the port 443 when the server URL names none, and IPv6 hosts without brackets', function () {
    expect(hostAndPort('https://api.example.com')).to.deep.equal({ host: 'api.example.com', port: '443' });
    expect(hostAndPort('https://[fd00::1]:6443')).to.deep.equal({ host: 'fd00::1', port: '6443' });
    expect(hostAndPort('https://[::1]')).to.deep.equal({ host: '::1', port: '443' });
  });

  it('is an Opaque Secret in the request namespace with user labels, managed labels winning, and bookkeeping', function () {
    const spec = validSpec({ secretLabels: { dpuservice: 'dpu-01', 'svc.dpu.nvidia.com/credential-request-name': 'spoofed' } });
    const secret = renderSecret(spec, endpoint, tokenRecord());
    expect(secret).to.include({ apiVersion: 'v1', kind: 'Secret', type: 'Opaque' });
    expect(secret.metadata).to.include({ name: 'dpu-01-credential', namespace: 'default' });
    expect(secret.metadata?.labels).to.deep.equal({
      dpuservice: 'dpu-01',
      'svc.dpu.nvidia.com/managed-by-controller': 'dpuservicecredentialrequestcontroller',
      'svc.dpu.nvidia.com/credential-request-name': 'dpu-01-credential-request',
      'svc.dpu.nvidia.com/credential-request-namespace': 'default',
    });
    expect(secret.metadata?.annotations).to.include({ team: 'a', 'svc.dpu.nvidia.com/token-expires-at': '2026-01-01T01:00:00.000Z' });
    expect(secret).to.not.have.property('stringData');
  });

  for (const type of ['kubeconfig', 'tokenFile'] as const) {
    it(`reads back the token and what it was minted for from a ${type} Secret`, function () {
      expect(readTokenRecord(renderSecret(validSpec({ type }), endpoint, tokenRecord()))).to.deep.equal(tokenRecord());
    });
  }

  it('renders the same inputs to the same bytes', function () {
    expect(JSON.stringify(renderSecret(validSpec(), endpoint, tokenRecord())))
      .to.equal(JSON.stringify(renderSecret(validSpec(), endpoint, tokenRecord())));
  });

  it('keeps names with YAML-special characters intact', function () {
    const odd = { ...endpoint, clusterName: 'team: a # "prod"' };
    const config = new KubeConfig();
    config.loadFromString(decoded(renderSecret(validSpec(), odd, tokenRecord()).data, 'kubeconfig'));
    expect(config.getCurrentCluster()?.name).to.equal('team: a # "prod"');
  });

  it('reads the token from a kubeconfig Secret written by other tools (plain YAML)', function () {
    const secret = renderSecret(validSpec(), endpoint, tokenRecord());
    const handWritten = stringify({ users: [{ name: 'sa', user: { token: 'hand.written.token' } }] });
    const record = readTokenRecord({ ...secret, data: { kubeconfig: Buffer.from(handWritten).toString('base64') } });
    expect(record?.token).to.equal('hand.written.token');
  });
});
