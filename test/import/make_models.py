# Test fixture for kiln import: small PyTorch MNIST models with random weights, exported by torch.onnx.export
# (Debian's python3-torch) into the folder given as argv[1]. No downloads.
import sys
import torch
import torch.nn as nn

out = sys.argv[1]
torch.manual_seed(0)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = x.view(x.size(0), -1)  # the Shape -> Gather -> Concat -> Reshape chain
        return self.fc2(torch.relu(self.fc1((x - 0.1307) / 0.3081)))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        # BatchNorm after the ReLU, so the exporter cannot fold it into the conv's weights.
        x = torch.max_pool2d(self.bn(torch.relu(self.conv1(x))), 2)
        x = torch.relu(self.conv2(x))
        x = self.drop(torch.flatten(x, 1))
        return torch.log_softmax(self.fc(x), dim=1)


class Odd(nn.Module):
    def forward(self, x):
        return torch.acos(x) + torch.acos(x * 2) + torch.atan(x)


def export(m, shape, name, opset, fold=True):
    m.eval()
    with torch.no_grad():
        for p in m.buffers():
            if p.dtype.is_floating_point:
                p.copy_(torch.rand_like(p) + 0.5)
    torch.onnx.export(m, torch.randn(*shape), f"{out}/{name}.onnx", input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset, do_constant_folding=fold)


export(Mlp(), (2, 1, 28, 28), "mnist_mlp", 13)
export(Cnn(), (2, 1, 28, 28), "mnist_cnn", 17)
export(Cnn(), (2, 1, 28, 28), "mnist_cnn13", 13, fold=False)
export(Odd(), (2, 5), "odd", 17)
