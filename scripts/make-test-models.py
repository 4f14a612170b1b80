#!/usr/bin/python3
"""
Small user-style networks exported the way users export them (torch.onnx.export, TorchScript
exporter, opsets 9-17), for the importer's tests (test/model/import-torch.test.ts), and small
versions of torchvision's ResNet, MobileNetV2 and SqueezeNet built from torchvision's blocks. Each model gets
a seeded input and torch's own logits in <name>.json ({"shape", "data", "torchLogits", "opset"}).

Needs Debian's python3-torch, python3-torchvision and python3-onnx (torch 1.13, onnx 1.12), never
the project's install or tests:
    apt-get install -y python3-torch python3-torchvision python3-onnx
    /usr/bin/python3 scripts/make-test-models.py [OUT_DIR]      # default test/model/fixtures

`--torchvision DIR` instead exports torchvision vgg11 (default init), resnet18, mobilenet_v2 and
squeezenet1_1 at 224x224 (opset 13, random weights, randomised BatchNorm statistics, eval mode)
with an input and torch's logits, for the acceptance check outside the test suite (hundreds of MB).
"""
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

torch.manual_seed(0)


def write_case(out_dir, name, model, shape, opset, dynamic_batch=False):
    """Exports `model` (eval mode) and writes <name>.onnx and <name>.json."""
    model.eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        logits = model(x)
    path = os.path.join(out_dir, f"{name}.onnx")
    torch.onnx.export(
        model, x, path, opset_version=opset, input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None,
    )
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump({"shape": list(shape), "data": x.flatten().tolist(), "torchLogits": logits.flatten().tolist(), "opset": opset}, f)
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(f"{name}: opset {opset}, {os.path.getsize(path)} bytes, ops {ops}")


class PaddedAvgPoolNet(nn.Module):
    """nn.AvgPool2d(3, 2, padding=1): count_include_pad=True, exported as a zero Pad + AveragePool."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AvgPool2d(3, 2, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(F.relu(self.conv(x))), 1))


class DynamicViewNet(nn.Module):
    """x.view(x.size(0), -1) with a dynamic batch: Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 3 * 3, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc(x.view(x.size(0), -1))


class SmallVgg(nn.Module):
    """torchvision's VGG layout and initialisation (zero biases everywhere), scaled down."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(
            nn.Linear(16 * 2 * 2, 32), nn.ReLU(True), nn.Dropout(),
            nn.Linear(32, 32), nn.ReLU(True), nn.Dropout(),
            nn.Linear(32, 10),
        )
        for m in self.modules():  # torchvision.models.vgg.VGG.__init__
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def mlp(activation):
    return nn.Sequential(nn.Linear(6, 8), activation, nn.Linear(8, 8), activation, nn.Linear(8, 3))


class TinyResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv3 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        y = F.relu(self.conv1(x))
        y = F.relu(y + self.conv3(F.relu(self.conv2(y))))
        return self.fc(torch.flatten(y, 1))


def conv_net(activation):
    return nn.Sequential(nn.Conv2d(3, 4, 3), activation, nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def dilated_average_pool(out_dir):
    """AveragePool with dilations (opset 19; torch 1.13 cannot export it): [1,1,5,5] -> [1,1,3,3] with
    kernel 2, dilations 2, and a Gemm after it so the model has a weight layer."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 9)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[2, 2], dilations=[2, 2], name="dilated_pool"),
            helper.make_node("Flatten", ["p"], ["f"], axis=1),
            helper.make_node("Gemm", ["f", "W"], ["logits"], transB=1, name="fc"),
        ],
        "dilated_avgpool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], producer_name="make-test-models.py")
    model.ir_version = 9
    path = os.path.join(out_dir, "dilated_avgpool_op19.onnx")
    onnx.save(model, path)  # not onnx.checker: onnx 1.12 predates opset 19
    x = rng.standard_normal((1, 1, 5, 5)).astype(np.float32)
    with open(os.path.join(out_dir, "dilated_avgpool_op19.json"), "w") as f:
        json.dump({"shape": [1, 1, 5, 5], "data": x.flatten().tolist(), "opset": 19}, f)
    print(f"dilated_avgpool_op19: opset 19, {os.path.getsize(path)} bytes")


def small_torchvision_models(out_dir):
    """Small versions of torchvision's ResNet, MobileNetV2 and SqueezeNet, built from torchvision's own
    blocks (BasicBlock, InvertedResidual, Fire) at small widths and 32x32 inputs, BatchNorm statistics
    randomised, for the jest suite (torchvision's full-size models are hundreds of MB)."""
    from torchvision.models.mobilenetv2 import MobileNetV2
    from torchvision.models.resnet import BasicBlock
    from torchvision.models.squeezenet import Fire

    class SmallResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            down = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
            self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
            self.layer2 = nn.Sequential(BasicBlock(8, 16, 2, down), BasicBlock(16, 16))
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
            x = self.layer2(self.layer1(x))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    small_squeezenet = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(8, 4, 8, 8), Fire(16, 4, 8, 8), nn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 8, 16, 16),
        nn.Dropout(0.5), nn.Conv2d(32, 10, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
    )
    small_mobilenet = MobileNetV2(num_classes=10, width_mult=0.25, inverted_residual_setting=[[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2]])
    for name, model in [("small_resnet_op13", SmallResNet()), ("small_mobilenet_v2_op13", small_mobilenet), ("small_squeezenet_op13", small_squeezenet)]:
        randomise_batchnorm(model)
        write_case(out_dir, name, model, (1, 3, 32, 32), 13)


def small_models(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    # Accepted.
    write_case(out_dir, "padded_avgpool_op9", PaddedAvgPoolNet(), (1, 3, 8, 8), 9)
    write_case(out_dir, "padded_avgpool_op17", PaddedAvgPoolNet(), (1, 3, 8, 8), 17)
    write_case(out_dir, "dynamic_view_op13", DynamicViewNet(), (1, 1, 8, 8), 13, dynamic_batch=True)
    write_case(out_dir, "dynamic_view_op9", DynamicViewNet(), (1, 1, 8, 8), 9, dynamic_batch=True)
    write_case(out_dir, "small_vgg_default_init_op13", SmallVgg(), (1, 3, 16, 16), 13)
    write_case(out_dir, "small_vgg_default_init_op11", SmallVgg(), (1, 3, 16, 16), 11)
    # Refused, each with its own message.
    write_case(out_dir, "leaky_relu_mlp_op13", mlp(nn.LeakyReLU(0.1)), (1, 6), 13)
    write_case(out_dir, "tiny_residual_op13", TinyResidual(), (1, 2, 4, 4), 13)
    write_case(out_dir, "relu6_op13", conv_net(nn.ReLU6()), (1, 3, 6, 6), 13)
    write_case(out_dir, "softmax_mlp_op13", nn.Sequential(mlp(nn.ReLU()), nn.Softmax(dim=1)), (1, 6), 13)
    write_case(out_dir, "silu_op13", conv_net(nn.SiLU()), (1, 3, 6, 6), 13)
    write_case(out_dir, "gelu_op13", conv_net(nn.GELU()), (1, 3, 6, 6), 13)
    dilated_average_pool(out_dir)
    small_torchvision_models(out_dir)


def randomise_batchnorm(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=g))


def torchvision_models(out_dir):
    import torchvision.models as tv

    os.makedirs(out_dir, exist_ok=True)
    for name in ["vgg11", "resnet18", "mobilenet_v2", "squeezenet1_1"]:
        torch.manual_seed(0)
        model = getattr(tv, name)()  # random weights, torchvision's default initialisation
        randomise_batchnorm(model)
        write_case(out_dir, name, model, (1, 3, 224, 224), 13)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--torchvision":
        torchvision_models(sys.argv[2])
    else:
        small_models(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "test", "model", "fixtures"))
