"""SyncNet evaluation: the reference's numbers on the parity case, windows, and bad input."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from syncnet import InputError, SyncResult, evaluate_sync, load_syncnet
from syncnet.audio import mfcc
from syncnet.evaluate import embed_windows, shift_distances, sync_from_features
from syncnet.model import SyncNet, SyncNetModel

RTOL, ATOL = 1e-4, 1e-3


@pytest.fixture(scope="module")
def case(parity_dir):
    d = parity_dir / "syncnet_eval"
    rate, audio = wavfile.read(d / "audio.wav")
    assert rate == 16000
    return {"frames": np.load(d / "frames.npz")["bgr"], "audio": audio,
            "expected": json.loads((d / "expected.json").read_text()),
            "dists": np.load(d / "dists.npy"), "fconf": np.load(d / "framewise_conf.npy")}


@pytest.fixture(scope="module")
def parity_result(case, syncnet_weights):
    model = load_syncnet(syncnet_weights, device="cpu")
    exp = case["expected"]
    return evaluate_sync(model, case["frames"], case["audio"], vshift=exp["vshift"], batch_size=exp["batch_size"])


def test_state_dict_matches_published_manifest(parity_dir):
    manifest = json.loads((parity_dir.parent / "manifest_syncnet.json").read_text())["keys"]
    ours = [(k, list(v.shape)) for k, v in SyncNetModel().state_dict().items()
            if not k.endswith("num_batches_tracked")]
    assert ours == [(k, list(s)) for k, s in manifest]


def test_parity_with_reference(case, parity_result):
    exp, res = case["expected"], parity_result
    assert isinstance(res, SyncResult)
    assert res.offset == exp["offset"]
    assert res.n_frames == exp["n_frames"]
    for name in ("confidence", "min_dist", "median_dist"):
        np.testing.assert_allclose(getattr(res, name), exp[name], rtol=RTOL, atol=ATOL, err_msg=name)
    assert res.dists.dtype == np.float32 and res.dists.shape == case["dists"].shape
    np.testing.assert_allclose(res.dists, case["dists"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(res.framewise_conf, case["fconf"], rtol=RTOL, atol=ATOL)
    assert res.n_windows == len(case["frames"]) - 5


def test_load_syncnet_is_in_eval_mode_on_the_device(syncnet_weights):
    model = load_syncnet(syncnet_weights, device="cpu")
    assert not model.training
    assert next(model.parameters()).device.type == "cpu"
    with pytest.raises(InputError, match="device"):
        load_syncnet(syncnet_weights, device="tpu:7")


class WindowProbe(torch.nn.Module):
    """Returns its inputs as features: lip = the 5 frame means per channel, audio = the MFCC window."""

    def forward_lip(self, x):  # (N, 3, 5, H, W)
        return x.mean(dim=(3, 4)).flatten(1)

    def forward_lip_clip(self, clip):  # (1, 3, T, H, W): the same per 5-frame window
        return clip.mean(dim=(3, 4))[0].unfold(1, 5, 1).permute(1, 0, 2).flatten(1)

    def forward_aud(self, x):  # (N, 1, 13, 20)
        return x.flatten(1)


class FrameMeans(torch.nn.Module):
    """Cheap same-size features: each frame's brightness, each frame's mean MFCC energy (c0)."""

    def forward_lip(self, x):
        return x.mean(dim=(1, 3, 4))

    def forward_lip_clip(self, clip):
        return clip.mean(dim=(1, 3, 4))[0].unfold(0, 5, 1).contiguous()

    def forward_aud(self, x):
        return x[:, 0, 0, :].reshape(len(x), 5, 4).mean(dim=2)


def _clip(n_frames: int, n_samples: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n_frames, 224, 224, 3), dtype=np.uint8)
    audio = (rng.standard_normal(n_samples) * 3000).astype(np.int16)
    return frames, audio


def test_windows_are_the_reference_slices():
    frames, audio = _clip(31, 31 * 640)
    lip, aud = embed_windows(WindowProbe(), frames, audio, batch_size=7)
    n_win = 31 - 5
    assert lip.shape[0] == aud.shape[0] == n_win
    means = frames.astype(np.float64).mean(axis=(1, 2))  # (T, 3) in B, G, R order
    cc = mfcc(audio).astype(np.float32)
    for i in (0, 6, 7, 13, n_win - 1):  # either side of batch boundaries
        np.testing.assert_allclose(lip[i].numpy(), means[i:i + 5].T.ravel(), rtol=1e-5)
        np.testing.assert_array_equal(aud[i].numpy(), cc[:, 4 * i:4 * i + 20].ravel())


def test_vectorised_distances_equal_the_reference_loop():
    gen = torch.Generator().manual_seed(1)
    lip, aud = torch.randn(40, 16, generator=gen), torch.randn(40, 16, generator=gen)
    vshift = 6
    padded = torch.nn.functional.pad(aud, (0, 0, vshift, vshift))
    loop = torch.stack([torch.nn.functional.pairwise_distance(lip[[i], :].repeat(2 * vshift + 1, 1),
                                                              padded[i:i + 2 * vshift + 1, :])
                        for i in range(len(lip))])
    torch.testing.assert_close(shift_distances(lip, aud, vshift), loop, rtol=1e-6, atol=1e-6)


def test_two_stages_equal_one_call_and_batch_size_does_not_matter():
    frames, audio = _clip(40, 40 * 640, seed=2)
    one = evaluate_sync(FrameMeans(), frames, audio, vshift=5, batch_size=20)
    lip, aud = embed_windows(FrameMeans(), frames, audio, batch_size=3)
    two = sync_from_features(lip, aud, vshift=5, n_frames=len(frames))
    assert two.offset == one.offset
    np.testing.assert_allclose(two.dists, one.dists, rtol=1e-6)
    assert one.dists.shape == (35, 11) and one.framewise_conf.shape == (35,)


class Untouchable(torch.nn.Module):
    def forward_lip_clip(self, x):
        raise AssertionError("the network must not run on unusable input")

    forward_aud = forward_lip_clip


@pytest.mark.parametrize("n_frames", [0, 1, 5])
def test_too_few_frames(n_frames):
    frames, audio = _clip(n_frames, 16000)
    with pytest.raises(InputError, match=rf"too short: {n_frames} frames"):
        evaluate_sync(Untouchable(), frames, audio)


def test_too_little_audio():
    frames, audio = _clip(50, 5 * 640 + 639)
    with pytest.raises(InputError, match="too short: 50 frames"):
        evaluate_sync(Untouchable(), frames, audio)


def test_no_audio():
    frames, _ = _clip(50, 0)
    with pytest.raises(InputError, match="no audio"):
        evaluate_sync(Untouchable(), frames, np.zeros(0, np.int16))


def test_wrong_frame_size():
    with pytest.raises(InputError, match="224, 224, 3"):
        evaluate_sync(Untouchable(), np.zeros((10, 112, 112, 3), np.uint8), np.zeros(6400, np.int16))


@pytest.mark.parametrize("extra_samples", [3 * 640 + 17, -(4 * 640 + 100)])
def test_length_mismatch_warns_and_uses_the_shorter(caplog, extra_samples):
    frames, audio = _clip(30, 30 * 640 + max(extra_samples, 0), seed=3)
    audio = audio[:30 * 640 + extra_samples]
    with caplog.at_level(logging.WARNING, logger="syncnet.evaluate"):
        res = evaluate_sync(FrameMeans(), frames, audio, vshift=4)
    assert any("lengths differ" in r.getMessage() for r in caplog.records)
    usable = min(30, len(audio) // 640)
    assert res.n_windows == usable - 5 and res.n_frames == 30
    # The same as handing over only the part both share: the surplus changes nothing.
    caplog.clear()
    trimmed = evaluate_sync(FrameMeans(), frames[:usable], audio[:usable * 640], vshift=4)
    assert not caplog.records
    assert trimmed.offset == res.offset
    np.testing.assert_array_equal(trimmed.dists, res.dists)


def test_less_than_a_frame_apart_is_logged_not_warned(caplog):
    """AAC sound ends up to a packet short of the picture: reported at INFO (visible with -v)."""
    frames, audio = _clip(30, 30 * 640 - 368, seed=4)
    with caplog.at_level(logging.INFO, logger="syncnet.evaluate"):
        evaluate_sync(FrameMeans(), frames, audio, vshift=4)
    levels = [r.levelno for r in caplog.records if "lengths differ" in r.getMessage()]
    assert levels == [logging.INFO]


def test_equal_lengths_do_not_warn(caplog):
    frames, audio = _clip(12, 12 * 640)
    with caplog.at_level(logging.WARNING):
        evaluate_sync(FrameMeans(), frames, audio, vshift=2)
    assert not caplog.records


def test_short_track_framewise_conf_is_scipys_zero_padded_median():
    from scipy import signal

    frames, audio = _clip(11, 11 * 640, seed=5)  # 6 windows, fewer than the kernel of 9
    res = evaluate_sync(FrameMeans(), frames, audio, vshift=3)
    best = 3 - res.offset
    fconf = (np.float32(res.median_dist) - res.dists[:, best]).astype(np.float32)
    with pytest.warns(UserWarning, match="kernel_size exceeds"):
        expected = signal.medfilt(fconf, kernel_size=9)
    np.testing.assert_allclose(res.framewise_conf, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("channels_last", [True, False])
def test_lip_tower_on_a_clip_equals_window_by_window(case, syncnet_weights, channels_last):
    """forward_lip_clip (first convolution once over the clip) gives each window's forward_lip."""
    model = load_syncnet(syncnet_weights, device="cpu")
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    frames = torch.from_numpy(case["frames"][:14]).permute(3, 0, 1, 2)  # (3, 14, H, W)
    windows = frames.unfold(1, 5, 1).permute(1, 0, 4, 2, 3).contiguous(memory_format=fmt).float()
    clip = frames.unsqueeze(0).contiguous(memory_format=fmt).float()
    with torch.inference_mode():
        by_window = model.forward_lip(windows)
        by_clip = model.forward_lip_clip(clip)
    assert by_clip.shape == (10, 1024)
    torch.testing.assert_close(by_clip, by_window, rtol=1e-5, atol=1e-4)


def test_the_loaded_syncnet_owns_its_precision_and_memory_format(syncnet_weights):
    """load_syncnet's runner holds device, precision and lip memory format; the network does not."""
    model = load_syncnet(syncnet_weights, device="cpu", precision="bf16")
    assert isinstance(model, SyncNet) and isinstance(model.net, SyncNetModel)
    assert (model.device.type, model.precision, model.lip_memory_format) == ("cpu", "bf16", torch.channels_last_3d)
    assert not hasattr(model.net, "precision") and not hasattr(model.net, "lip_memory_format")
    bare = SyncNet.of(FrameMeans())
    assert (bare.device.type, bare.precision, bare.lip_memory_format) == ("cpu", "fp32", torch.contiguous_format)
    assert SyncNet.of(model) is model


def test_a_bare_network_gives_what_the_loaded_syncnet_gives(case, syncnet_weights):
    """evaluate_sync takes the nn.Module itself too (in fp32, its parameters' device)."""
    model = load_syncnet(syncnet_weights, device="cpu")
    frames, audio = case["frames"][:30], case["audio"][: 30 * 640]
    a = evaluate_sync(model.net, frames, audio, batch_size=10)
    b = evaluate_sync(model, frames, audio, batch_size=10)
    assert a.offset == b.offset
    np.testing.assert_allclose(a.dists, b.dists, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_proxy_of_the_loaded_syncnet_runs_as_it(case, syncnet_weights, precision):
    """The batch job hands out the model behind a lock (Serialised): it still runs at the
    loaded precision and memory format, so it gives exactly the loaded SyncNet's numbers;
    a proxy of a bare network (a test double) runs as the network."""
    import threading

    from syncnet.jobs.batch import Serialised

    model = load_syncnet(syncnet_weights, device="cpu", precision=precision)
    frames, audio = case["frames"][:30], case["audio"][: 30 * 640]
    a = evaluate_sync(Serialised(model, threading.Lock()), frames, audio, batch_size=10)
    b = evaluate_sync(model, frames, audio, batch_size=10)
    np.testing.assert_array_equal(a.dists, b.dists)
    c = evaluate_sync(Serialised(FrameMeans(), threading.Lock()), frames, audio, batch_size=10)
    np.testing.assert_array_equal(c.dists, evaluate_sync(FrameMeans(), frames, audio, batch_size=10).dists)


@pytest.mark.parametrize("n_frames", [6, 9, 24, 31])
def test_the_doubles_clip_form_is_their_window_form(n_frames):
    """The test doubles' forward_lip_clip computes bit for bit what forward_lip gives each window."""
    from testkit.doubles import BrightnessLoudnessSyncNet

    frames, _ = _clip(n_frames, 0, seed=n_frames)
    part = torch.from_numpy(frames).permute(3, 0, 1, 2)  # (3, T, H, W)
    windows = part.unfold(1, 5, 1).permute(1, 0, 4, 2, 3).contiguous().float()
    clip = part.unsqueeze(0).contiguous().float()
    for double in (BrightnessLoudnessSyncNet(), FrameMeans()):
        assert torch.equal(double.forward_lip_clip(clip), double.forward_lip(windows)), type(double).__name__
    probe = WindowProbe()
    torch.testing.assert_close(probe.forward_lip_clip(clip), probe.forward_lip(windows))
