// Renders deploy/ and metacontroller/compositecontroller.yaml from the Helm chart (the source
// of truth), for those who install with kustomize or kubectl apply:
//   npm run render:deploy            writes the files
// `helm template` with chart/deploy-values.yaml (release and namespace dpu-credential-webhook),
// one file per template: templates/<path> becomes deploy/<path>, templates/compositecontroller.yaml
// becomes metacontroller/compositecontroller.yaml. spec/deploy/chart.e2e.spec.ts fails when
// the files differ from what this renders.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { helm } from '../harness/helm.js';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));
export const chartDir = join(repoRoot, 'chart/dpu-credential-webhook');
const valuesFile = join(repoRoot, 'chart/deploy-values.yaml');
export const releaseName = 'dpu-credential-webhook';

/** Where a template's rendering goes, relative to the repository. */
export function renderedPath(template: string): string {
  return template === 'compositecontroller.yaml' ? 'metacontroller/compositecontroller.yaml' : `deploy/${template}`;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

/**
 * helm writes each document as "---\n# Source: <template>\n<document>\n": the file keeps the
 * documents, separated by "---", under a line that says where it comes from.
 */
function asManifestFile(template: string, rendered: string): string {
  const documents = rendered.split(/^---\n# Source: [^\n]*\n/m).filter((text) => text.trim() !== '');
  const header = `# Rendered from chart/dpu-credential-webhook/templates/${template} by npm run render:deploy: edit the template.\n`;
  return header + documents.map((document) => document.replace(/\n+$/, '\n')).join('---\n');
}

/** Every rendered file: repository path to content. */
export async function renderDeploy(): Promise<Map<string, string>> {
  const work = await mkdtemp(join(tmpdir(), 'render-deploy-'));
  try {
    const out = join(work, 'out');
    await helm(['template', releaseName, chartDir, '--namespace', releaseName, '--values', valuesFile, '--output-dir', out], { home: join(work, 'helm') });
    const templatesDir = join(out, 'dpu-credential-webhook', 'templates');
    const files = new Map<string, string>();
    for (const path of (await filesUnder(templatesDir)).sort()) {
      const template = relative(templatesDir, path);
      files.set(renderedPath(template), asManifestFile(template, await readFile(path, 'utf8')));
    }
    return files;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [path, content] of await renderDeploy()) {
    await writeFile(join(repoRoot, path), content);
    console.log(`wrote ${path}`);
  }
}
