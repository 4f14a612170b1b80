/**
 * `lipcert dataset MODEL --data FILE.npz|DIR [--mean M --std S] [--limit N] [--eps E,...] [--radius]
 * [--json]`: certified accuracy over a labelled test set (model/dataset.ts loads it,
 * dataset/certify-dataset.ts certifies it image by image). A progress bar with ETA on stderr when it
 * is a terminal; a human summary, or with --json one object: count, accuracy, certifiedAccuracy
 * (the step function of dataset/summary.ts), images (per-image records), seconds.
 * Method and certificate are passed to the library explicitly (same options and defaults as `bound`).
 */
import { type Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { ENGINE_VERSION } from '../bounds/certify.js';
import type { BoundMethod } from '../bounds/types.js';
import type { BackendName } from '../backend/backend.js';
import { BACKEND_NAMES, createBackend } from '../backend/select.js';
import { BadInputError } from '../errors.js';
import { loadDataset } from '../model/dataset.js';
import type { Network } from '../model/ir.js';
import { loadModel } from '../model/load.js';
import { certifyDataset, type DatasetResult } from '../dataset/certify-dataset.js';
import { certifiedAccuracyAt } from '../dataset/summary.js';
import { planLanes } from '../dataset/lanes.js';
import { addMethodOptions, type MethodCliOptions, parseCount, parseEpsList, parseMethodOptions, parseNumberList, textTable } from './shared.js';

export interface DatasetCliOptions extends MethodCliOptions {
  data?: string;
  mean?: string;
  std?: string;
  limit?: string;
  eps?: string;
  radius?: boolean;
  backend: string;
  parallel?: string;
  json?: boolean;
}

export interface DatasetReport extends DatasetResult {
  model: string;
  data: string;
  method: BoundMethod;
  certificate: string;
  backend: string;
  adapter: string;
  tolerance: number;
  secondsPerImage: number;
  engineVersion: string;
}

/** A bar with images done, ETA and running accuracy on stderr when it is a terminal. */
function imageProgress(total: number): { update: (done: number, correct: number) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: ' {bar} {value}/{total} images | ETA {eta_formatted} | accuracy so far {accuracy}', hideCursor: true, clearOnComplete: true, etaBuffer: 20 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { accuracy: '–' });
  return {
    update: (done, correct) => bar.update(done, { accuracy: `${((100 * correct) / done).toFixed(1)}%` }),
    stop: () => bar.stop(),
  };
}

/** The whole command as a function: the object that --json prints. */
export async function runDataset(model: string, options: DatasetCliOptions): Promise<DatasetReport> {
  if (!options.data) throw new BadInputError('--data FILE.npz|DIR is required');
  const { method, certificate, delta, seed, tolerance, branchBudget } = parseMethodOptions(options);
  const eps = options.eps === undefined ? [] : parseEpsList(options.eps);
  const limit = options.limit === undefined ? undefined : parseCount(options.limit, '--limit', 1);
  const network: Network = await loadModel(model); // an ONNX file is cross-checked against onnxruntime
  const dataset = loadDataset(options.data, network, {
    mean: options.mean === undefined ? undefined : parseNumberList(options.mean, '--mean'),
    std: options.std === undefined ? undefined : parseNumberList(options.std, '--std'),
    limit,
  });
  const requestedLanes = parseCount(options.parallel, '--parallel');
  const plan = planLanes(network, dataset.count, requestedLanes);
  const backend = await createBackend(options.backend as BackendName, network, { threads: plan.threads });
  // Lanes are worker threads with a backend each: for the CPU backend only (a GPU is one device).
  if (backend.name !== 'cpu' && plan.lanes > 1) {
    if (requestedLanes !== undefined) {
      await backend.dispose();
      throw new BadInputError(`--parallel ${requestedLanes} needs the CPU backend (this run uses ${backend.name}); use --parallel 1 or --backend cpu`);
    }
    plan.lanes = 1;
  }
  const progress = imageProgress(dataset.count);
  let correct = 0;
  try {
    const result = await certifyDataset(network, dataset, backend, {
      eps,
      radius: Boolean(options.radius),
      method,
      certificate,
      delta,
      seed,
      tolerance,
      branchBudget,
      lanes: plan.lanes,
      laneBackend: { threads: plan.threads },
      onImage: (record, done) => {
        if (record.predictedClass === record.label) correct++;
        progress.update(done, correct);
      },
    });
    return {
      model: network.name,
      data: options.data,
      method,
      certificate: options.certify,
      backend: backend.name,
      adapter: backend.adapter,
      tolerance,
      ...result,
      secondsPerImage: result.seconds / result.count,
      engineVersion: ENGINE_VERSION,
    };
  } finally {
    progress.stop();
    await backend.dispose();
  }
}

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;
const number = (x: number) => String(Number(x.toPrecision(4)));

/** Radii for the summary table: 0, the --eps values, and each power of ten between the smallest and largest radius. */
function summaryRadii(report: DatasetReport, eps: number[]): number[] {
  const positive = report.images.map((r) => r.radius ?? 0).filter((r) => r > 0);
  const radii = new Set<number>([0, ...eps]);
  if (positive.length) {
    const low = Math.ceil(Math.log10(Math.min(...positive)));
    const high = Math.floor(Math.log10(Math.max(...positive)));
    for (let k = low; k <= high; k++) radii.add(Number(`1e${k}`));
  }
  return [...radii].sort((a, b) => a - b);
}

function radiusNote(report: DatasetReport): string {
  if (report.radiusQuality === 'estimate') return 'radii from spectral norm estimates: estimates of the method\'s radius, not certificates';
  if (report.failureProbabilityTotal) {
    return `radii certified by probabilistic certificates: the expected number of images wrongly counted as certified is at most ${number(report.failureProbabilityTotal)} (sum of their failure probabilities)`;
  }
  return 'radii certified by deterministic certificates';
}

export function formatDataset(report: DatasetReport): string {
  const out: string[] = [];
  out.push(`model ${report.model}, ${report.count} images from ${report.data}; method ${report.method}, certificates ${report.certificate}, backend ${report.backend} (${report.adapter})`);
  out.push(`accuracy: ${report.correct}/${report.count} = ${percent(report.accuracy)}`);
  const eps = report.images[0]?.local.map((l) => l.eps) ?? [];
  if (report.certifiedAccuracy) {
    const curve = report.certifiedAccuracy;
    out.push('', `certified accuracy (classified correctly and certified at radius r, of all ${report.count} images; ${radiusNote(report)}):`);
    out.push(textTable(['radius r', 'certified accuracy'], summaryRadii(report, eps).map((r) => [number(r), percent(certifiedAccuracyAt(curve, r))])));
    out.push(`median certified radius: ${number(report.medianRadius ?? 0)} over all images (misclassified count as 0), ${report.medianRadiusCorrect === null ? '–' : number(report.medianRadiusCorrect)} over the ${report.correct} classified correctly`);
  } else {
    out.push('(no certified radii: add --radius for certified accuracy)');
  }
  for (const [i, e] of eps.entries()) {
    const bounds = report.images.map((r) => r.local[i]);
    const sorted = bounds.map((b) => b.bound).sort((a, b) => a - b);
    const estimates = bounds.filter((b) => b.quality === 'estimate').length;
    const quality = estimates === 0 ? 'upper bounds' : estimates === bounds.length ? 'from spectral norm estimates' : `${estimates} of ${bounds.length} from spectral norm estimates`;
    out.push(`local bound L(x0, ${e}): median ${number(sorted[sorted.length >> 1])}, range ${number(sorted[0])} to ${number(sorted[sorted.length - 1])} (${quality})`);
  }
  out.push('', `time: ${report.seconds.toFixed(1)} s, ${report.secondsPerImage.toFixed(3)} s per image (${report.lanes} image${report.lanes === 1 ? '' : 's'} at once)`);
  return out.join('\n') + '\n';
}

export function registerDatasetCommand(program: Command): Command {
  const command = program
    .command('dataset')
    .description('certified accuracy over a labelled test set (.npz with x and y, or an ImageFolder directory)')
    .argument('<model>', 'ONNX model file, or zoo:NAME[:SEED]')
    .option('--data <path>', 'the test set: FILE.npz (x [N,C,H,W] or [N,H,W,C], uint8 pixels or floats; y integer labels) or an ImageFolder directory root/<class>/<image>.png')
    .option('--mean <m>', 'normalisation mean, one value or one per channel (uint8 pixels and PNGs are first scaled to [0,1])')
    .option('--std <s>', 'normalisation std, one value or one per channel')
    .option('--limit <n>', 'certify only the first N images')
    .option('--eps <list>', 'comma-separated radii of local bounds per image, e.g. 0.001,0.01')
    .option('--radius', 'compute each correctly classified image\'s certified radius (for certified accuracy)')
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_NAMES).default('auto'))
    .option('--parallel <n>', 'images certified at once, each on its own thread (default: one per core for networks the CPU backend runs by default, else 1; the same records either way)')
    .option('--json', 'print one JSON object on stdout');
  addMethodOptions(command);
  return command.action(async (model: string, options: DatasetCliOptions) => {
    const report = await runDataset(model, options);
    process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatDataset(report));
  });
}
