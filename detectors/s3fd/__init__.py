"""S3FD face detector: the published network and weights (`sfd_face.pth`), the reference's
`detect_faces`, and a batched form that runs many same-size frames through one forward pass."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from syncnet.device import parse_device
from syncnet.errors import InputError
from syncnet.precision import autocast, check_precision
from syncnet.weights import S3FD as S3FD_WEIGHTS
from syncnet.weights import load_weights_into

from .box_utils import detect, final_nms, prior_boxes
from .net import S3FDNet

# The reference swaps RGB to BGR, subtracts (104, 117, 123) from B, G, R and swaps back:
# the network sees R - 123, G - 117, B - 104 in RGB order.
RGB_MEAN = (123.0, 117.0, 104.0)
# Smallest input side whose deepest feature map is not empty (five halvings, one of them ceil).
MIN_INPUT_SIDE = 28


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    try:
        out = cv2.resize(image, dsize=(0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    except cv2.error as exc:
        raise InputError(f"cannot resize a {image.shape[1]}x{image.shape[0]} image by {scale}") from exc
    if min(out.shape[:2]) < MIN_INPUT_SIDE:
        raise InputError(f"a {image.shape[1]}x{image.shape[0]} image at scale {scale} is "
                         f"{out.shape[1]}x{out.shape[0]}: too small for S3FD "
                         f"(needs at least {MIN_INPUT_SIDE} pixels a side)")
    return out


def _check_images(images: np.ndarray) -> None:
    if images.ndim != 4 or images.shape[-1] != 3 or 0 in images.shape[1:3]:
        raise InputError(f"S3FD takes RGB images of shape (H, W, 3), got {images.shape[1:]}")


class S3FD:
    """The published face detector.

    `detect_faces(rgb, conf_th, scales)` returns what the reference returns; `detect_batch`
    gives the same for many same-size frames at one scale with one forward pass.
    """

    def __init__(self, weights: str | Path, device: str | torch.device = "cpu", precision: str = "fp32"):
        self.device = parse_device(device)
        self.precision = check_precision(precision, self.device)
        self.net = load_weights_into(S3FDNet(), weights, S3FD_WEIGHTS).to(self.device).eval()
        # On the CPU, oneDNN runs S3FD about 1.25x faster on channels-last (NHWC) tensors,
        # which is also the layout decoded frames arrive in; results differ only by rounding.
        self.channels_last = self.device.type == "cpu"
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self._mean = torch.tensor(RGB_MEAN, dtype=torch.float32, device=self.device)

    def _detect(self, images: np.ndarray, conf_th: float, scale: float) -> list[np.ndarray]:
        """One scale, same-size RGB images -> per image the float64 (N, 5) rows that the
        reference stacks: pixel boxes of the original image, score."""
        if not scale > 0:
            raise InputError(f"S3FD scale must be positive, got {scale}")
        h, w = images.shape[1:3]
        if images.strides[-1] < 0:
            # A channel-reversed view (BGR frames passed as RGB): resizing works per channel,
            # so resize the contiguous BGR memory and reverse the small result (same values,
            # without copying every full-size frame first).
            resized = np.ascontiguousarray(np.stack([_resize(im, scale) for im in images[..., ::-1]])[..., ::-1])
        else:
            resized = np.stack([_resize(im, scale) for im in images])
        x = torch.from_numpy(resized).to(self.device)
        with torch.inference_mode():
            x = (x.float() - self._mean).permute(0, 3, 1, 2)  # NHWC memory: channels-last already
            if not self.channels_last:
                x = x.contiguous()
            with autocast(self.device, self.precision):
                loc, conf, sizes = self.net(x)
            loc, conf = loc.float(), conf.float()
            priors = prior_boxes(x.shape[2], x.shape[3], sizes, self.device)
            per_image = [detect(loc[b], conf[b], priors, conf_th) for b in range(len(images))]
        # Pixel coordinates in float32 (as the reference), then float64 like its np.vstack.
        size = np.array([w, h, w, h], dtype=np.float32)
        return [np.concatenate((d[:, :4] * size, d[:, 4:]), 1).astype(np.float64) for d in per_image]

    def detect_faces(self, image_rgb: np.ndarray, conf_th: float = 0.8,
                     scales: Sequence[float] = (1,)) -> np.ndarray:
        """(N, 5) float32 x1, y1, x2, y2, score of one RGB image (H, W, 3): the reference's
        boxes, in its order, after its NMS across scales."""
        image = np.asarray(image_rgb)[None]
        _check_images(image)
        found = [self._detect(image, conf_th, s)[0] for s in scales]
        return _merge(found)

    def detect_batch(self, images_rgb: np.ndarray | Sequence[np.ndarray], conf_th: float = 0.8,
                     scale: float = 0.25) -> list[np.ndarray]:
        """`detect_faces(img, conf_th, [scale])` for each of many same-size RGB images
        ((B, H, W, 3) array or list), with one forward pass for the batch."""
        if len(images_rgb) == 0:
            return []
        try:
            images = np.asarray(images_rgb)
        except ValueError as exc:
            raise InputError("detect_batch takes images of one size") from exc
        _check_images(images)
        return [_merge([d]) for d in self._detect(images, conf_th, scale)]


def _merge(per_scale: list[np.ndarray]) -> np.ndarray:
    """The reference's final NMS (IoU 0.1) over the boxes of all scales."""
    if not per_scale:
        return np.zeros((0, 5), np.float32)
    dets = np.concatenate(per_scale).reshape(-1, 5)
    return dets[final_nms(dets)].astype(np.float32)


__all__ = ["S3FD", "S3FDNet"]
