import { importOnnxFile, loadInputFile, createBackend, certify } from './src/index.js';
const backend = await createBackend('cpu');
const net = importOnnxFile(`fixtures/mnist_lenet.onnx`);
const x0 = loadInputFile(`fixtures/mnist_lenet_x0.npy`, net);
await certify(net, x0, backend, { eps: [0.001, 0.01, 0.1, 1] });
const times: number[] = [];
for (let i = 0; i < 20; i++) { const r = await certify(net, x0, backend, { eps: [0.001] }); times.push(r.local[0].seconds*1000); }
console.log(times.map(t=>t.toFixed(1)).join(' '));
