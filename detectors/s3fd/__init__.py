"""S3FD face detector (the published network and weights `sfd_face.pth`)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from syncnet.weights import S3FD as S3FD_WEIGHTS
from syncnet.weights import load_weights_into

from .box_utils import nms_numpy, priors, select
from .net import S3FDNet

# The reference subtracts these from B, G, R, then feeds the image in RGB order.
RGB_MEAN = np.array([123.0, 117.0, 104.0], np.float32)


def _device(device: str) -> torch.device:
    from syncnet.errors import InputError

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but CUDA is not available here")
    return dev


class S3FD:
    """`S3FD(weights=PATH, device="cpu")`; `detect_faces(rgb, conf_th, scales)` as the reference."""

    def __init__(self, weights: str | Path, device: str = "cpu"):
        self.device = _device(device)
        self.net = load_weights_into(S3FDNet(), weights, S3FD_WEIGHTS).to(self.device).eval()

    def _detect(self, images_rgb: np.ndarray, conf_th: float, scale: float) -> list[np.ndarray]:
        """Boxes of one scale for same-size images: per image (N, 5) float32, pixels of the original."""
        h, w = images_rgb.shape[1:3]
        resized = np.stack([cv2.resize(im, dsize=(0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
                            for im in images_rgb])
        x = torch.from_numpy(resized).to(self.device).float()
        x = (x - torch.from_numpy(RGB_MEAN).to(self.device)).permute(0, 3, 1, 2).contiguous()
        with torch.inference_mode():
            loc, scores, sizes = self.net(x)
            prior = priors(x.shape[2], x.shape[3], sizes, self.device)
            size = torch.tensor([w, h, w, h], dtype=torch.float32, device=self.device)
            out = []
            for b in range(len(images_rgb)):
                dets = select(loc[b], scores[b], prior, conf_th)
                out.append(torch.cat((dets[:, :4] * size, dets[:, 4:]), 1).cpu().numpy())
        return out

    def detect_faces(self, image_rgb: np.ndarray, conf_th: float = 0.8, scales=(1,)) -> np.ndarray:
        """(N, 5) float32 x1, y1, x2, y2, score of one RGB uint8 image, the reference's boxes and order."""
        found = [self._detect(np.asarray(image_rgb)[None], conf_th, s)[0] for s in scales]
        return _final(np.concatenate(found) if found else np.zeros((0, 5), np.float32))

    def detect_batch(self, images_rgb, conf_th: float = 0.8, scale: float = 0.25) -> list[np.ndarray]:
        """detect_faces(img, conf_th, [scale]) of many same-size images, one forward pass for all."""
        images = np.asarray(images_rgb)
        if len(images) == 0:
            return []
        return [_final(d) for d in self._detect(images, conf_th, scale)]


def _final(dets: np.ndarray) -> np.ndarray:
    dets = dets.astype(np.float64)
    if len(dets) == 0:
        return np.zeros((0, 5), np.float32)
    return dets[nms_numpy(dets)].astype(np.float32)


__all__ = ["S3FD", "S3FDNet"]
