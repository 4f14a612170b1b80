#!/usr/bin/python3
"""
Acceptance check of issue 15 outside the test suite: `lipcert predict` on torchvision models exported
by torch.onnx.export gives torch's logits (1e-4 relative to the largest) and class.

    /usr/bin/python3 scripts/make-test-models.py --torchvision DIR   # vgg11, resnet18, mobilenet_v2,
                                                                      # squeezenet1_1 at 224x224 (opset 13)
    npm run build && /usr/bin/python3 scripts/check-torchvision.py DIR

Also checks the padded AvgPool2d nets and the LeakyReLU MLP of test/model/fixtures. Each model goes
through the CLI as a user's would: import, the onnxruntime cross-check, the engine's forward pass.
Prints one line per model (time, largest difference, classes) and exits 1 if any disagrees.
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CLI = os.path.join(ROOT, "dist", "src", "cli.js")
FIXTURES = os.path.join(ROOT, "test", "model", "fixtures")


def check(onnx, case):
    with open(case) as f:
        torch_logits = json.load(f)["torchLogits"]
    started = time.time()
    run = subprocess.run(["node", CLI, "predict", onnx, "--input", case, "--json"], capture_output=True, text=True)
    seconds = time.time() - started
    if run.returncode != 0:
        return False, f"refused ({run.returncode}): {run.stderr.strip()}"
    ours = json.loads(run.stdout)
    scale = max(abs(v) for v in torch_logits)
    difference = max(abs(a - b) for a, b in zip(ours["logits"], torch_logits))
    torch_class = max(range(len(torch_logits)), key=lambda i: torch_logits[i])
    ok = len(ours["logits"]) == len(torch_logits) and difference <= 1e-4 * scale and ours["class"] == torch_class
    return ok, f"{seconds:6.1f} s  max |lipcert - torch| = {difference:.3g} ({difference / scale:.2g} of the largest logit {scale:.3g}), class {ours['class']} (torch {torch_class})"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    cases = [(os.path.join(sys.argv[1], f"{n}.onnx"), os.path.join(sys.argv[1], f"{n}.json")) for n in ["vgg11", "resnet18", "mobilenet_v2", "squeezenet1_1"]]
    cases += [(os.path.join(FIXTURES, f"{n}.onnx"), os.path.join(FIXTURES, f"{n}.json")) for n in ["padded_avgpool_op9", "padded_avgpool_op17", "leaky_relu_mlp_op13"]]
    failures = 0
    for onnx, case in cases:
        ok, line = check(onnx, case)
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {os.path.basename(onnx):28} {line}", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
