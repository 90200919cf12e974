"""The published anti-aliased ImageNet checkpoints: file hashes and published figures (data only).

Zhang, *Making Convolutional Networks Shift-Invariant Again* (ICML 2019), reference code
adobe/antialiased-cnns, release ``weights_v0.1``. The API that turns these rows into weights
objects is :mod:`antialias.models._weights`; a new checkpoint is a row here plus a member there.
"""

from __future__ import annotations

__all__ = [
    "BASE_URL",
    "FINETUNED",
    "FROM_SCRATCH",
    "LICENSE",
    "LICENSE_URL",
    "NUM_PARAMS",
    "PAPER",
    "PREPROCESSING",
    "SHA256_PREFIXES",
]

#: Where the reference publishes its files: ``<BASE_URL><checkpoint>-<sha256 prefix>.pth``.
BASE_URL = "https://antialiased-cnns.s3.us-east-2.amazonaws.com/weights_v0.1/"
LICENSE = "CC BY-NC-SA 4.0 (Adobe)"
LICENSE_URL = "https://creativecommons.org/licenses/by-nc-sa/4.0/"
PAPER = "Zhang, Making Convolutional Networks Shift-Invariant Again, ICML 2019"

#: The reference's evaluation transform (torchvision's ImageNet convention).
PREPROCESSING = {
    "resize": 256,
    "center_crop": 224,
    "interpolation": "bilinear",
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
}

#: SHA-256 prefix (the published file name's suffix) of each checkpoint, by the reference's file
#: stem: ``<arch>_lpf<filter taps>`` trained from scratch, ``..._finetune`` fine-tuned from the
#: torchvision baseline.
SHA256_PREFIXES = {
    "alexnet_lpf2": "da8aca74",
    "alexnet_lpf3": "f9bbc410",
    "alexnet_lpf4": "0114fe25",
    "alexnet_lpf5": "4fa3706a",
    "alexnet_lpf4_finetune": "20598a7a",
    "vgg11_lpf4_finetune": "35eab449",
    "vgg11_bn_lpf4_finetune": "5d60b5e4",
    "vgg13_lpf4_finetune": "d8ff02c4",
    "vgg13_bn_lpf4_finetune": "45e2a72f",
    "vgg16_lpf2": "60268e0c",
    "vgg16_lpf3": "e9b0ce42",
    "vgg16_lpf4": "de9267ac",
    "vgg16_lpf5": "1391f70c",
    "vgg16_lpf4_finetune": "79c9dff7",
    "vgg16_bn_lpf2": "2c2052a8",
    "vgg16_bn_lpf3": "1782878a",
    "vgg16_bn_lpf4": "a1c3559b",
    "vgg16_bn_lpf5": "c500b52f",
    "vgg16_bn_lpf4_finetune": "1dd798d1",
    "vgg19_lpf4_finetune": "7ab2cf45",
    "vgg19_bn_lpf4_finetune": "d0114293",
    "resnet18_lpf2": "6e2ee76f",
    "resnet18_lpf3": "449351b9",
    "resnet18_lpf4": "8c77af40",
    "resnet18_lpf5": "c1eed0a1",
    "resnet18_lpf4_finetune": "8cc58f59",
    "resnet34_lpf2": "4707aed9",
    "resnet34_lpf3": "16aa6c48",
    "resnet34_lpf4": "55747267",
    "resnet34_lpf5": "85283561",
    "resnet34_lpf4_finetune": "db622952",
    "resnet50_lpf2": "f0f7589d",
    "resnet50_lpf3": "a4e868d2",
    "resnet50_lpf4": "994b528f",
    "resnet50_lpf5": "9953c9ad",
    "resnet50_lpf4_finetune": "cad66808",
    "resnet101_lpf2": "3d00941d",
    "resnet101_lpf3": "928f1444",
    "resnet101_lpf4": "f8a116ff",
    "resnet101_lpf5": "1f3745af",
    "resnet101_lpf4_finetune": "9280acb0",
    "resnet152_lpf4_finetune": "7f67d9ae",
    "resnext50_32x4d_lpf4_finetune": "9106e549",
    "resnext101_32x8d_lpf4_finetune": "8f13a25d",
    "wide_resnet50_2_lpf4_finetune": "02a183f7",
    "wide_resnet101_2_lpf4_finetune": "da4eae04",
    "densenet121_lpf2": "7da7d4cd",
    "densenet121_lpf3": "0f267ad8",
    "densenet121_lpf4": "edeaab00",
    "densenet121_lpf5": "ebc7880c",
    "densenet121_lpf4_finetune": "eceaa619",
    "densenet161_lpf4_finetune": "a5e0f328",
    "densenet169_lpf4_finetune": "992131e6",
    "densenet201_lpf4_finetune": "736979b2",
    "mobilenet_v2_lpf2": "f4379012",
    "mobilenet_v2_lpf3": "23b2e2ee",
    "mobilenet_v2_lpf4": "2e0b9cb9",
    "mobilenet_v2_lpf5": "ab8fe968",
    "mobilenet_v2_lpf4_finetune": "7eed94b1",
}

#: Trainable parameters (weights and biases, no buffers), counted from the reference key lists.
NUM_PARAMS = {
    "alexnet": 61100840, "vgg11": 132863336, "vgg11_bn": 132868840, "vgg13": 133047848,
    "vgg13_bn": 133053736, "vgg16": 138357544, "vgg16_bn": 138365992, "vgg19": 143667240,
    "vgg19_bn": 143678248, "resnet18": 11689512, "resnet34": 21797672, "resnet50": 25557032,
    "resnet101": 44549160, "resnet152": 60192808, "resnext50_32x4d": 25028904,
    "resnext101_32x8d": 88791336, "wide_resnet50_2": 68883240, "wide_resnet101_2": 126886696,
    "densenet121": 7978856, "densenet161": 28681000, "densenet169": 14149480,
    "densenet201": 20013928, "mobilenet_v2": 3504872,
}  # fmt: skip

#: ImageNet val top-1 / consistency (%), trained from scratch, per filter size (the paper's table).
FROM_SCRATCH = {
    "alexnet": {2: (57.24, 81.33), 3: (56.90, 82.15), 4: (56.72, 82.54), 5: (56.58, 82.51)},
    "vgg16": {2: (72.15, 89.24), 3: (72.20, 89.60), 4: (72.43, 89.92), 5: (72.33, 90.19)},
    "vgg16_bn": {2: (74.01, 90.72), 3: (73.91, 91.10), 4: (74.12, 91.22), 5: (74.05, 91.35)},
    "resnet18": {2: (71.39, 86.90), 3: (71.69, 87.51), 4: (71.48, 88.07), 5: (71.38, 88.25)},
    "resnet34": {2: (74.46, 89.14), 3: (74.33, 89.32), 4: (74.38, 89.53), 5: (74.20, 89.49)},
    "resnet50": {2: (76.81, 89.96), 3: (76.83, 90.91), 4: (77.23, 91.29), 5: (77.04, 91.31)},
    "resnet101": {2: (77.82, 91.04), 3: (78.13, 91.62), 4: (78.22, 91.85), 5: (77.92, 91.74)},
    "densenet121": {2: (75.04, 89.53), 3: (75.14, 89.78), 4: (75.29, 90.29), 5: (75.03, 90.39)},
    "mobilenet_v2": {2: (72.63, 87.33), 3: (72.59, 87.46), 4: (72.72, 87.72), 5: (72.50, 87.79)},
}
#: Fine-tuned Tri-4 (the reference's README); the other 17 fine-tuned models have no number here.
FINETUNED = {
    "resnet18": (71.67, 88.36),
    "resnet50": (77.41, 91.32),
    "vgg16_bn": (75.13, 91.58),
    "densenet121": (75.79, 90.35),
    "mobilenet_v2": (72.72, 87.73),
    "alexnet": (56.94, 83.31),
}
