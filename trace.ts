import { importOnnxFile, loadInputFile, createBackend } from './src/index.js';
import { nominalPass, localBound, SpectralSolver, globalBound } from './src/bounds/layer-bounds.js';
import { certifiedRadius } from './src/bounds/radius.js';
import { topTwo } from './src/bounds/certify.js';
const backend = await createBackend('cpu');
for (const [m, f] of [['mnist_lenet','mnist_lenet_x0.npy'],['mnist_lenet','mnist_3.png'],['cifar10_net','cifar10_net_x0.npy']]) {
const net = importOnnxFile(`fixtures/${m}.onnx`);
const x0 = loadInputFile(`fixtures/${f}`, net, m==='mnist_lenet'?{mean:[0.1307],std:[0.3081]}:{mean:[0.4914,0.4822,0.4465],std:[0.247,0.2435,0.2616]});
const nominal = await nominalPass(net, backend, x0);
const solver = new SpectralSolver(backend, { tolerance: 1e-6, maxIterations: 5000 });
const g = await globalBound(net, solver);
const { margin } = topTwo(nominal.logits);
const c = margin/Math.SQRT2;
const seq: string[] = [];
const r = await certifiedRadius(margin, margin/(Math.SQRT2*g.bound), async (e) => { const t=performance.now(); const L = (await localBound(net, backend, nominal, e, solver)).bound; seq.push(`${e.toPrecision(8)} g/c=${(e*L/c).toFixed(6)} ${(performance.now()-t).toFixed(0)}ms`); return L; }, 1e-4);
console.log(m, f, r); console.log(seq.join('\n'));
}
