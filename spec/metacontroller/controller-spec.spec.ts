// The driver's reading of a CompositeController, checked against what Metacontroller's
// source does (pkg/hooks/webhook.go webhookURL, endpoint_config.go matchEndpointConfig).
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import {
  connectionSettingsFor, readCompositeController, timeoutMsOf, unknownFields, webhookUrl, type EndpointConfig,
} from '../../harness/metacontroller/controller-spec.js';
import { readShippedCertificates } from '../../harness/webhook-install.js';

const service = { name: 'hook', namespace: 'ns', port: 443, protocol: 'https' };
const ca = (name: string) => ({ caBundle: { secretRef: { name, namespace: 'ns' } } });

describe('the CompositeController as the driver reads it', function () {
  it('builds the hook URL as {protocol}://{name}.{namespace}:{port}{path}, without .svc, with http and 80 as defaults', function () {
    expect(webhookUrl({ service, path: '/sync' })).to.equal('https://hook.ns:443/sync');
    expect(webhookUrl({ service: { name: 'hook', namespace: 'ns' }, path: '/sync' })).to.equal('http://hook.ns:80/sync');
    expect(webhookUrl({ url: 'https://elsewhere/x', service, path: '/sync' })).to.equal('https://elsewhere/x');
    expect(() => webhookUrl({ service })).to.throw("both 'service' and 'path'");
  });

  it('matches endpointConfigs by host, with or without the default port, and lets a hook\'s own settings win whole', function () {
    const configs: EndpointConfig[] = [{ host: 'other.ns:443', ...ca('other') }, { host: 'HOOK.ns', ...ca('first') }, { host: 'hook.ns:443', ...ca('second') }];
    expect(connectionSettingsFor({ service, path: '/sync' }, configs)).to.equal(configs[1]);
    expect(connectionSettingsFor({ url: 'https://hook.ns/sync' }, [configs[2]!])).to.equal(configs[2]);
    expect(connectionSettingsFor({ url: 'https://hook.ns:8443/sync' }, configs)).to.equal(undefined);
    const own = { service, path: '/sync', authorization: { secretRef: { name: 't', namespace: 'ns', key: 'token' } } };
    expect(connectionSettingsFor(own, configs)).to.equal(own);
  });

  it('ships a CompositeController with only fields Metacontroller v4.17 knows (what fieldValidation=Strict refuses under its CRD)', async function () {
    expect(unknownFields(await readCompositeController())).to.deep.equal([]);
    const typo = { kind: 'CompositeController', spec: { parentResource: { apiVersion: 'v1', resource: 'x', ignoreStatusChange: true },
      endpointConfigs: [{ host: 'h', authorization: { secretRef: { name: 'n', namespace: 'ns', keys: 'token' } } }] } };
    expect(unknownFields(typo)).to.deep.equal(['spec.parentResource.ignoreStatusChange', 'spec.endpointConfigs[0].authorization.secretRef.keys']);
  });

  it('reads webhook.timeout as a Go duration, 10 s when unset or not positive', function () {
    expect(timeoutMsOf({ timeout: '1m30s' })).to.equal(90_000);
    expect(timeoutMsOf({ timeout: '500ms' })).to.equal(500);
    expect(timeoutMsOf({})).to.equal(10_000);
    expect(timeoutMsOf({ timeout: '0s' })).to.equal(10_000);
  });

  it('ships hooks whose URL host is a name of the shipped serving certificate, and a caBundle that reads the CA\'s Secret', async function () {
    const controller = await readCompositeController();
    const certificates = await readShippedCertificates();
    for (const [name, hook] of Object.entries(controller.spec.hooks)) {
      const host = new URL(webhookUrl(hook.webhook)).hostname;
      expect(certificates.dnsNames, `${name} hook host ${host}`).to.include(host);
      const settings = connectionSettingsFor(hook.webhook, controller.spec.endpointConfigs);
      expect(settings?.caBundle?.secretRef, `${name} hook caBundle`).to.deep.include({ name: certificates.caSecretName, namespace: certificates.namespace });
      expect(settings?.authorization?.secretRef.key, `${name} hook authorization key`).to.equal('token');
    }
  });

  it('mounts in the Deployment the Secrets Metacontroller reads: the hook token (token and previous) and the serving certificate', async function () {
    const controller = await readCompositeController();
    const certificates = await readShippedCertificates();
    const deployment = parse(await readFile(new URL('../../deploy/deployment.yaml', import.meta.url), 'utf8')) as {
      spec: { template: { spec: {
        containers: { env: { name: string; value: string }[]; volumeMounts: { name: string; mountPath: string }[] }[];
        volumes: { name: string; secret: { secretName: string; items?: unknown } }[];
      } } };
    };
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0]!;
    const env = (name: string) => container.env.find((variable) => variable.name === name)?.value ?? '';
    const volumeAt = (file: string) => {
      const mount = container.volumeMounts.find((candidate) => file.startsWith(`${candidate.mountPath}/`));
      return pod.volumes.find((volume) => volume.name === mount?.name)?.secret;
    };
    const tokenSecret = controller.spec.endpointConfigs?.[0]?.authorization?.secretRef.name;
    expect(volumeAt(env('HOOK_BEARER_TOKEN_FILE'))?.secretName).to.equal(tokenSecret);
    // Every key is mounted (no items list), so `previous` appears beside `token` during a rotation.
    expect(volumeAt(env('HOOK_BEARER_TOKEN_FILE'))).to.not.have.property('items');
    expect(env('HOOK_BEARER_TOKEN_FILE')).to.match(/\/token$/);
    expect(volumeAt(env('TLS_CERT_FILE'))?.secretName).to.equal(certificates.servingSecretName);
  });
});
