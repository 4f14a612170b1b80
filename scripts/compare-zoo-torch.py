#!/usr/bin/python3
"""
The zoo's ResNet-18 and MobileNetV2 against torchvision's: `lipcert export zoo:NAME` writes the zoo
model (seeded He weights, BatchNorm folded into the convolutions); this script loads those weights
into torchvision's own architecture (each Conv2d gets the exported weight of the same shape, in
order; the BatchNorm after it becomes the identity plus the exported bias: weight 1, bias b,
running mean 0, running variance 1 - eps; each Linear its weight and bias), runs torch in eval mode
on a seeded 3x224x224 input, and compares with `lipcert predict` on the exported file (1e-4 relative
to the largest logit, same class). Every exported weight must be used and every torch layer filled:
a different architecture fails on a shape or a count before any number is compared.

    npm run build && /usr/bin/python3 scripts/compare-zoo-torch.py [OUT_DIR]

Needs Debian's python3-torch, python3-torchvision and python3-onnx (never the project's install).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn
import torchvision.models as tv
from onnx import numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CLI = os.path.join(ROOT, "dist", "src", "cli.js")


def exported_weights(path):
    """(weight, bias) of every Conv and Gemm node of the exported graph, in node order."""
    model = onnx.load(path)
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return [(tensors[n.input[1]], tensors[n.input[2]]) for n in model.graph.node if n.op_type in ("Conv", "Gemm")]


def load_into(model, weights):
    modules = list(model.modules())
    used = 0
    for i, m in enumerate(modules):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w, b = weights[used]
            used += 1
            if tuple(m.weight.shape) != w.shape:
                raise SystemExit(f"layer {used - 1}: torchvision {type(m).__name__} {tuple(m.weight.shape)}, lipcert {w.shape}")
            m.weight.data.copy_(torch.from_numpy(np.array(w)))
            if isinstance(m, nn.Linear):
                m.bias.data.copy_(torch.from_numpy(np.array(b)))
            else:
                bn = next(x for x in modules[i + 1:] if isinstance(x, (nn.BatchNorm2d, nn.Conv2d, nn.Linear)))
                if not isinstance(bn, nn.BatchNorm2d):
                    raise SystemExit(f"layer {used - 1}: no BatchNorm after a torchvision convolution")
                bn.weight.data.fill_(1)
                bn.bias.data.copy_(torch.from_numpy(np.array(b)))
                bn.running_mean.zero_()
                bn.running_var.fill_(1 - bn.eps)
    if used != len(weights):
        raise SystemExit(f"torchvision used {used} of lipcert's {len(weights)} weight layers")
    return used


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="lipcert-zoo-")
    failures = 0
    for name in ["resnet18", "mobilenet_v2"]:
        onnx_file = os.path.join(out, f"{name}.onnx")
        subprocess.run(["node", CLI, "export", f"zoo:{name}", onnx_file], check=True, capture_output=True)
        model = getattr(tv, name)()
        layers = load_into(model, exported_weights(onnx_file))
        model.eval()
        x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32))
        with torch.no_grad():
            torch_logits = model(x).flatten().tolist()
        case = os.path.join(out, f"{name}_input.json")
        with open(case, "w") as f:
            json.dump({"shape": [1, 3, 224, 224], "data": x.flatten().tolist()}, f)
        run = subprocess.run(["node", CLI, "predict", onnx_file, "--input", case, "--json"], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"FAIL {name}: lipcert predict refused: {run.stderr.strip()}")
            failures += 1
            continue
        ours = json.loads(run.stdout)
        scale = max(abs(v) for v in torch_logits)
        difference = max(abs(a - b) for a, b in zip(ours["logits"], torch_logits))
        torch_class = int(np.argmax(torch_logits))
        ok = difference <= 1e-4 * scale and ours["class"] == torch_class
        failures += not ok
        params = sum(p.numel() for p in model.parameters())
        print(f"{'ok  ' if ok else 'FAIL'} zoo:{name}: {layers} weight layers loaded into torchvision.models.{name} ({params} parameters with BatchNorm), "
              f"max |lipcert - torch| = {difference:.3g} ({difference / scale:.2g} of the largest logit {scale:.3g}), class {ours['class']} (torch {torch_class})", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
