"""YOLOX (Ge et al. 2021), the architecture of the MegadetectorLite camera-trap detector shipped in the
`zamba` wheel (`yolox_tiny_640_20220528.pth`, MIT). Written here against torch alone because the
`yolox` package is an sdist that compiles C++ ops at install time. Module names follow the reference
implementation, so its checkpoints load with `strict=True` — the proof that the architecture matches.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import batched_nms


class BaseConv(nn.Module):
    def __init__(self, cin: int, cout: int, ksize: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, ksize, stride, (ksize - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, shortcut: bool = True, expansion: float = 1.0):
        super().__init__()
        hidden = int(cout * expansion)
        self.conv1 = BaseConv(cin, hidden, 1)
        self.conv2 = BaseConv(hidden, cout, 3)
        self.use_add = shortcut and cin == cout

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class SPPBottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, kernels=(5, 9, 13)):
        super().__init__()
        hidden = cin // 2
        self.conv1 = BaseConv(cin, hidden, 1)
        self.m = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.conv2 = BaseConv(hidden * (len(kernels) + 1), cout, 1)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [m(x) for m in self.m], 1))


class CSPLayer(nn.Module):
    def __init__(self, cin: int, cout: int, n: int = 1, shortcut: bool = True, expansion: float = 0.5):
        super().__init__()
        hidden = int(cout * expansion)
        self.conv1 = BaseConv(cin, hidden, 1)
        self.conv2 = BaseConv(cin, hidden, 1)
        self.conv3 = BaseConv(2 * hidden, cout, 1)
        self.m = nn.Sequential(*[Bottleneck(hidden, hidden, shortcut, 1.0) for _ in range(n)])

    def forward(self, x):
        return self.conv3(torch.cat((self.m(self.conv1(x)), self.conv2(x)), 1))


class Focus(nn.Module):
    def __init__(self, cin: int, cout: int, ksize: int = 1):
        super().__init__()
        self.conv = BaseConv(cin * 4, cout, ksize)

    def forward(self, x):
        return self.conv(torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), 1))


class CSPDarknet(nn.Module):
    def __init__(self, depth: float, width: float):
        super().__init__()
        c, d = int(width * 64), max(round(depth * 3), 1)
        self.stem = Focus(3, c, ksize=3)
        self.dark2 = nn.Sequential(BaseConv(c, c * 2, 3, 2), CSPLayer(c * 2, c * 2, n=d))
        self.dark3 = nn.Sequential(BaseConv(c * 2, c * 4, 3, 2), CSPLayer(c * 4, c * 4, n=d * 3))
        self.dark4 = nn.Sequential(BaseConv(c * 4, c * 8, 3, 2), CSPLayer(c * 8, c * 8, n=d * 3))
        self.dark5 = nn.Sequential(BaseConv(c * 8, c * 16, 3, 2), SPPBottleneck(c * 16, c * 16),
                                   CSPLayer(c * 16, c * 16, n=d, shortcut=False))

    def forward(self, x):
        x = self.dark2(self.stem(x))
        dark3 = self.dark3(x)
        dark4 = self.dark4(dark3)
        return dark3, dark4, self.dark5(dark4)


class YOLOPAFPN(nn.Module):
    def __init__(self, depth: float, width: float, channels=(256, 512, 1024)):
        super().__init__()
        c0, c1, c2 = (int(c * width) for c in channels)
        n = round(3 * depth)
        self.backbone = CSPDarknet(depth, width)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = BaseConv(c2, c1, 1)
        self.C3_p4 = CSPLayer(2 * c1, c1, n, False)
        self.reduce_conv1 = BaseConv(c1, c0, 1)
        self.C3_p3 = CSPLayer(2 * c0, c0, n, False)
        self.bu_conv2 = BaseConv(c0, c0, 3, 2)
        self.C3_n3 = CSPLayer(2 * c0, c1, n, False)
        self.bu_conv1 = BaseConv(c1, c1, 3, 2)
        self.C3_n4 = CSPLayer(2 * c1, c2, n, False)

    def forward(self, x):
        x2, x1, x0 = self.backbone(x)
        fpn_out0 = self.lateral_conv0(x0)
        f_out0 = self.C3_p4(torch.cat([self.upsample(fpn_out0), x1], 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        pan_out2 = self.C3_p3(torch.cat([self.upsample(fpn_out1), x2], 1))
        pan_out1 = self.C3_n3(torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1))
        pan_out0 = self.C3_n4(torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1))
        return pan_out2, pan_out1, pan_out0


class YOLOXHead(nn.Module):
    def __init__(self, num_classes: int, width: float, strides=(8, 16, 32), channels=(256, 512, 1024)):
        super().__init__()
        self.num_classes = num_classes
        self.strides = strides
        hidden = int(256 * width)

        def tower():
            return nn.Sequential(BaseConv(hidden, hidden, 3), BaseConv(hidden, hidden, 3))

        self.stems = nn.ModuleList(BaseConv(int(c * width), hidden, 1) for c in channels)
        self.cls_convs = nn.ModuleList(tower() for _ in channels)
        self.reg_convs = nn.ModuleList(tower() for _ in channels)
        self.cls_preds = nn.ModuleList(nn.Conv2d(hidden, num_classes, 1) for _ in channels)
        self.reg_preds = nn.ModuleList(nn.Conv2d(hidden, 4, 1) for _ in channels)
        self.obj_preds = nn.ModuleList(nn.Conv2d(hidden, 1, 1) for _ in channels)

    def forward(self, features):
        outputs, grids, strides = [], [], []
        for k, (x, stride) in enumerate(zip(features, self.strides)):
            x = self.stems[k](x)
            reg_feat = self.reg_convs[k](x)
            out = torch.cat([self.reg_preds[k](reg_feat), self.obj_preds[k](reg_feat).sigmoid(),
                             self.cls_preds[k](self.cls_convs[k](x)).sigmoid()], 1)
            h, w = out.shape[-2:]
            yv, xv = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
            grids.append(torch.stack((xv, yv), 2).reshape(1, -1, 2))
            strides.append(torch.full((1, h * w, 1), stride, device=x.device))
            outputs.append(out.flatten(start_dim=2))
        out = torch.cat(outputs, 2).permute(0, 2, 1)
        grid, stride = torch.cat(grids, 1).type_as(out), torch.cat(strides, 1).type_as(out)
        xy = (out[..., :2] + grid) * stride
        wh = torch.exp(out[..., 2:4]) * stride
        return torch.cat([xy, wh, out[..., 4:]], -1)  # (batch, anchors, 4 + 1 + classes), boxes cx cy w h px


class YOLOX(nn.Module):
    """depth/width: tiny 0.33/0.375, s 0.33/0.5, m 0.67/0.75, l 1.0/1.0."""

    def __init__(self, num_classes: int = 1, depth: float = 0.33, width: float = 0.375):
        super().__init__()
        self.backbone = YOLOPAFPN(depth, width)
        self.head = YOLOXHead(num_classes, width)

    def forward(self, x):
        return self.head(self.backbone(x))


def postprocess(prediction: torch.Tensor, conf_threshold: float, nms_threshold: float) -> list[torch.Tensor]:
    """Per image: (n, 6) tensor of x1, y1, x2, y2 (input pixels), score = objectness x class, class."""
    boxes = torch.empty_like(prediction[..., :4])
    boxes[..., :2] = prediction[..., :2] - prediction[..., 2:4] / 2
    boxes[..., 2:] = prediction[..., :2] + prediction[..., 2:4] / 2
    results = []
    for image_boxes, image_pred in zip(boxes, prediction):
        class_conf, class_pred = image_pred[:, 5:].max(1)
        score = image_pred[:, 4] * class_conf
        keep = score >= conf_threshold
        b, s, c = image_boxes[keep], score[keep], class_pred[keep]
        kept = batched_nms(b, s, c, nms_threshold)
        results.append(torch.cat([b[kept], s[kept, None], c[kept, None].float()], 1))
    return results
