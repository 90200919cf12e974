"""Regenerate ``torchvision_keys.json``: torchvision's baseline state_dict layout and parity logits.

Not part of the test suite (it needs torchvision, which does not import beside the project's
torch). Run it in a throwaway venv outside the repository:

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/tv/bin/python tests/models/data/make_torchvision_reference.py

It records facts only: for each architecture, every state_dict entry's name, shape and dtype, and
the logits of the model filled by the parity rule of ../shared/reference/zoo_layout.md (applied to
torchvision's state_dict order) on the two deterministic inputs (S = 224 and 161).
"""

import json
import math
import pathlib

import torch
import torchvision

ARCHS = [
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
    "wide_resnet50_2", "wide_resnet101_2", "densenet121", "densenet161", "densenet169", "densenet201",
    "mobilenet_v2",
]


def fill(model):
    sd = model.state_dict()
    out = {}
    for i, (name, t) in enumerate(sd.items()):
        shape, numel = tuple(t.shape), t.numel()
        if not t.is_floating_point():
            out[name] = t
            continue
        base = torch.sin(0.37 * torch.arange(numel, dtype=torch.float64) + i).reshape(shape)
        if name.endswith("running_var"):
            v = 1 + 0.1 * base.abs()
        elif name.endswith("running_mean"):
            v = 0.05 * base
        elif t.ndim == 1 and name.endswith("weight"):
            v = 1 + 0.2 * base
        elif t.ndim == 1:
            v = 0.1 * base
        else:
            v = base / math.sqrt(numel / shape[0])
        out[name] = v.to(t.dtype)
    model.load_state_dict(out)


def main():
    torch.set_grad_enabled(False)
    result = {
        "generator": f"tests/models/data/make_torchvision_reference.py, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}",
        "models": {},
    }
    for arch in ARCHS:
        model = getattr(torchvision.models, arch)(weights=None).eval()
        entry = {
            "keys": [[n, list(t.shape), str(t.dtype).replace("torch.", "")] for n, t in model.state_dict().items()]
        }
        fill(model)
        for key, s in (("parity", 224), ("parity_odd", 161)):
            x = torch.sin(0.011 * torch.arange(3 * s * s, dtype=torch.float64)).reshape(1, 3, s, s).float()
            y = model(x)[0].double()
            entry[key] = {
                "size": s,
                "logits_first10": [round(v, 6) for v in y[:10].tolist()],
                "logits_sum": round(y.sum().item(), 5),
                "logits_l2": round(y.norm().item(), 5),
                "logits_max_abs": round(y.abs().max().item(), 5),
                "argmax": int(y.argmax()),
            }
        result["models"][arch] = entry
        print(arch, entry["parity"]["argmax"], entry["parity"]["logits_l2"], flush=True)
    path = pathlib.Path(__file__).with_name("torchvision_keys.json")
    path.write_text(json.dumps(result, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
