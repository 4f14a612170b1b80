/**
 * `lipcert table [--fixtures DIR] [--out DIR] [--json]`: the paper's Table III on the fixture images
 * (MNIST "8", "2", "3"; CIFAR-10 "dog4"): the global and local certified radii (lower bounds on the
 * minimal adversarial L2 perturbation, Proposition 6) beside each attack's perturbation (upper
 * bounds), as markdown and JSON; and the data of Fig. 7 (global bound, local bound, gradient-ascent
 * and random-sampling lower bounds over a log-spaced ε grid) as CSV. Every number of an image comes
 * from one analyse() call with the paper's method and Lanczos estimates (PAPER_REPRODUCTION, as the
 * paper computed them); `runTable` returns them as one JSON object.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Backend } from '../backend/backend.js';
import { analyse } from '../analysis/analyse.js';
import { type AttackMethod, ATTACK_METHODS, DEFAULT_ATTACK_STEPS } from '../bounds/attacks.js';
import { PAPER_REPRODUCTION } from '../bounds/defaults.js';
import { createBackend } from '../backend/select.js';
import { BadInputError, LipcertError } from '../errors.js';
import { loadInputFile, type Normalisation } from '../model/input.js';
import { importOnnxFile } from '../model/onnx-import.js';
import { parseCount, parseNumberList } from './shared.js';

export interface FixtureImage {
  model: 'mnist_lenet' | 'cifar10_net';
  image: string;
  file: string;
  norm: Normalisation;
  /** Part of Fig. 7 (one image per network). */
  figure7: boolean;
}

const MNIST_NORM: Normalisation = { mean: [0.1307], std: [0.3081] };
const CIFAR_NORM: Normalisation = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };

/** The nominal inputs of the paper's Table III that ship in fixtures/. */
export const TABLE_III_IMAGES: FixtureImage[] = [
  { model: 'mnist_lenet', image: '8', file: 'mnist_8.png', norm: MNIST_NORM, figure7: true },
  { model: 'mnist_lenet', image: '2', file: 'mnist_2.png', norm: MNIST_NORM, figure7: false },
  { model: 'mnist_lenet', image: '3', file: 'mnist_3.png', norm: MNIST_NORM, figure7: false },
  { model: 'cifar10_net', image: 'dog4', file: 'cifar10_dog4.png', norm: CIFAR_NORM, figure7: true },
];

export interface TableOptions {
  /** Directory holding the fixture models and images (default ./fixtures). */
  fixtures?: string;
  /** Fig. 7's ε grid (default 9 points, log-spaced from 1e-3 to 10). */
  eps?: number[];
  /** Only these images (names as in TABLE_III_IMAGES: '8', '2', '3', 'dog4'); default all. */
  images?: string[];
  /** Skip Fig. 7 (Table III only). */
  skipFigure7?: boolean;
  samples?: number;
  restarts?: number;
  steps?: number;
  attackSteps?: number;
  attackMethods?: AttackMethod[];
  seed?: number;
  /** Progress lines (to stderr in the CLI). */
  log?: (line: string) => void;
  backend?: Backend;
}

export interface TableRow {
  model: string;
  image: string;
  class: number;
  margin: number;
  /** δ/(√2 L_global): certified lower bound on the minimal perturbation. */
  globalRadius: number;
  /** Largest ε with ε·L(x0, ε) < δ/√2: certified lower bound on the minimal perturbation. */
  localRadius: number;
  /** Smallest perturbation each attack found (upper bounds), null where none was found. */
  attacks: Record<string, { perturbation: number | null; adversarialClass: number | null }>;
  seconds: number;
}

export interface Figure7Row {
  model: string;
  image: string;
  eps: number;
  global: number;
  local: number;
  gradientLower: number;
  randomLower: number;
}

export interface TableResult {
  table: TableRow[];
  figure7: Figure7Row[];
  /** The paper's Table III figures for MNIST "8" (from reference.json), where the fixtures hold them. */
  paper: Record<string, number> | null;
  backend: string;
  adapter: string;
  seconds: number;
}

/** Search budgets of Fig. 7's lower bounds (lighter than lowerBounds' defaults: 18 of them). */
export const TABLE_SAMPLES = 200;
export const TABLE_RESTARTS = 3;
export const TABLE_STEPS = 50;

export function logGrid(from: number, to: number, count: number): number[] {
  if (!(from > 0 && to > from && Number.isInteger(count) && count >= 2)) throw new BadInputError(`an eps grid needs 0 < from < to and at least 2 points`);
  return Array.from({ length: count }, (_, i) => Number((from * (to / from) ** (i / (count - 1))).toPrecision(6)));
}

export async function runTable(options: TableOptions = {}): Promise<TableResult> {
  const started = performance.now();
  const dir = options.fixtures ?? path.resolve('fixtures');
  const grid = options.eps ?? logGrid(1e-3, 10, 9);
  const log = options.log ?? (() => {});
  const methods = options.attackMethods ?? ATTACK_METHODS;
  const table: TableRow[] = [];
  const figure7: Figure7Row[] = [];
  const images = options.images ?? TABLE_III_IMAGES.map((f) => f.image);
  for (const name of images) {
    if (!TABLE_III_IMAGES.some((f) => f.image === name)) throw new BadInputError(`unknown fixture image '${name}' (expected ${TABLE_III_IMAGES.map((f) => f.image).join(', ')})`);
  }
  const backend = options.backend ?? (await createBackend('cpu'));
  try {
    for (const fixture of TABLE_III_IMAGES.filter((f) => images.includes(f.image))) {
      const t0 = performance.now();
      const modelFile = path.join(dir, `${fixture.model}.onnx`);
      if (!fs.existsSync(modelFile)) throw new LipcertError('NOT_FOUND', `fixture model '${modelFile}' not found (use --fixtures DIR)`);
      const network = await importOnnxFile(modelFile);
      const x0 = loadInputFile(path.join(dir, fixture.file), network, fixture.norm);
      const withFigure = fixture.figure7 && !options.skipFigure7;
      const label = `${fixture.model} image ${fixture.image}`;
      log(`${label}: certified radius${withFigure ? `, local and lower bounds at ${grid.length} eps` : ''}, attacks (${methods.join(', ')})`);
      const result = await analyse(network, x0, backend, {
        ...PAPER_REPRODUCTION,
        eps: withFigure ? grid : [],
        radius: true,
        lower: withFigure ? { samples: options.samples ?? TABLE_SAMPLES, restarts: options.restarts ?? TABLE_RESTARTS, steps: options.steps ?? TABLE_STEPS } : null,
        seed: options.seed,
        attacks: { methods, steps: options.attackSteps ?? DEFAULT_ATTACK_STEPS },
      });
      table.push({
        model: fixture.model,
        image: fixture.image,
        class: result.class,
        margin: result.margin,
        globalRadius: result.radius!.global,
        localRadius: result.radius!.local,
        attacks: Object.fromEntries(result.attacks!.map((a) => [a.method, { perturbation: a.perturbation, adversarialClass: a.adversarialClass }])),
        seconds: (performance.now() - t0) / 1000,
      });
      for (const local of withFigure ? result.local : []) {
        const at = (method: string) => result.lowerBounds!.find((l) => l.eps === local.eps && l.method === method)!.bound;
        figure7.push({ model: fixture.model, image: fixture.image, eps: local.eps, global: result.global!.bound, local: local.bound, gradientLower: at('gradient'), randomLower: at('random') });
      }
    }
    const referenceFile = path.join(dir, 'reference.json');
    const paper = fs.existsSync(referenceFile) ? (JSON.parse(fs.readFileSync(referenceFile, 'utf8')).paper?.table_III_mnist_8 ?? null) : null;
    return { table, figure7, paper, backend: backend.name, adapter: backend.adapter, seconds: (performance.now() - started) / 1000 };
  } finally {
    if (!options.backend) await backend.dispose();
  }
}

const fmt = (v: number | null) => (v === null ? 'none found' : v.toPrecision(3));

export function tableMarkdown(result: TableResult): string {
  const methods = Object.keys(result.table[0]?.attacks ?? {});
  const names: Record<string, string> = { fgsm: 'FGSM', ifgsm: 'iterative FGSM', pgd: 'PGD (L2)' };
  const header = ['', ...result.table.map((r) => `${r.model === 'mnist_lenet' ? 'MNIST' : 'CIFAR-10'} "${r.image}"`)];
  const row = (label: string, cells: string[]) => `| ${[label, ...cells].join(' | ')} |`;
  const lines = [
    row(header[0], header.slice(1)),
    row('---', header.slice(1).map(() => '---')),
    ...methods.map((m) => row(`upper bound: ${names[m] ?? m}`, result.table.map((r) => fmt(r.attacks[m].perturbation)))),
    row('lower bound: local', result.table.map((r) => fmt(r.localRadius))),
    row('lower bound: global', result.table.map((r) => fmt(r.globalRadius))),
  ];
  const paper = result.paper
    ? `\nThe paper's Table III, MNIST "8": ${Object.entries(result.paper).map(([k, v]) => `${k} ${v}`).join(', ')} ('gradient' is its L2 gradient attack, beside PGD here).\n`
    : '';
  return `${lines.join('\n')}\n\nMinimal adversarial L2 perturbation (normalised input space), bracketed: attacks give upper bounds, certified radii (Proposition 6) lower bounds. ${result.backend} backend (${result.adapter}), ${result.seconds.toFixed(1)} s.\n${paper}`;
}

export function figure7Csv(result: TableResult): string {
  const lines = ['model,image,eps,global,local,gradient_lower,random_lower'];
  for (const r of result.figure7) lines.push([r.model, r.image, r.eps, r.global, r.local, r.gradientLower, r.randomLower].join(','));
  return `${lines.join('\n')}\n`;
}

export interface TableCliOptions {
  fixtures?: string;
  out?: string;
  json?: boolean;
  eps?: string;
  figure7?: boolean;
  images?: string;
  samples?: string;
  restarts?: string;
  steps?: string;
  attackSteps?: string;
}

export function registerTableCommand(program: Command): Command {
  return program
    .command('table')
    .description("reproduce the paper's Table III (certified radii vs attacks) and the data of Fig. 7 on the fixtures")
    .option('--fixtures <dir>', 'directory of the fixture models and images', 'fixtures')
    .option('--out <dir>', 'write table3.md, table3.json and fig7.csv there')
    .option('--eps <values>', "Fig. 7's eps grid (comma-separated; default 9 points log-spaced from 0.001 to 10)")
    .option('--images <names>', `fixture images (comma-separated; default ${TABLE_III_IMAGES.map((f) => f.image).join(',')})`)
    .option('--no-figure7', 'Table III only')
    .option('--samples <n>', `random-sampling points per eps (default ${TABLE_SAMPLES})`)
    .option('--restarts <n>', `gradient-ascent restarts per eps (default ${TABLE_RESTARTS})`)
    .option('--steps <n>', `gradient-ascent steps per restart (default ${TABLE_STEPS})`)
    .option('--attack-steps <n>', 'iterations of ifgsm and pgd at each size')
    .option('--json', 'print the result as JSON')
    .action(async (options: TableCliOptions) => {
        const result = await runTable({
          fixtures: options.fixtures,
          eps: options.eps === undefined ? undefined : parseNumberList(options.eps, '--eps'),
          images: options.images?.split(',').map((s) => s.trim()),
          skipFigure7: options.figure7 === false,
          samples: parseCount(options.samples, '--samples'),
          restarts: parseCount(options.restarts, '--restarts'),
          steps: parseCount(options.steps, '--steps'),
          attackSteps: parseCount(options.attackSteps, '--attack-steps'),
          log: (line) => process.stderr.write(`${line}\n`),
        });
        if (options.out) {
          fs.mkdirSync(options.out, { recursive: true });
          fs.writeFileSync(path.join(options.out, 'table3.md'), tableMarkdown(result));
          fs.writeFileSync(path.join(options.out, 'table3.json'), `${JSON.stringify(result, null, 2)}\n`);
          if (result.figure7.length > 0) fs.writeFileSync(path.join(options.out, 'fig7.csv'), figure7Csv(result));
        }
        process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : tableMarkdown(result));
    });
}
