"""Weights: strict loading, where files are found, and downloads that never leave half a file."""
from __future__ import annotations

import io
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from detectors.s3fd.net import S3FDNet
from syncnet import SyncNetModel, WeightsError, load_syncnet, resolve_weights
from syncnet import weights as W
from syncnet._cli import weights as cli


def _with_counters(src: Path, dst: Path) -> Path:
    """A copy with a zero `num_batches_tracked` for every batch-norm layer (as newer torch saves)."""
    state = torch.load(src, weights_only=True)
    for key in [k for k in state if k.endswith("running_mean")]:
        state[key[:-len("running_mean")] + "num_batches_tracked"] = torch.tensor(0)
    torch.save(state, dst)
    return dst


def test_loads_with_and_without_counters(syncnet_weights, tmp_path):
    plain = load_syncnet(syncnet_weights)
    counted_file = _with_counters(syncnet_weights, tmp_path / "counted.model")
    assert sum(k.endswith("num_batches_tracked") for k in torch.load(counted_file, weights_only=True)) == 14
    counted = load_syncnet(counted_file)
    for (k1, v1), (k2, v2) in zip(plain.state_dict().items(), counted.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    published = torch.load(syncnet_weights, weights_only=True)
    assert torch.equal(plain.state_dict()["netfclip.3.weight"], published["netfclip.3.weight"])


def test_s3fd_file_given_as_syncnet(s3fd_weights):
    with pytest.raises(WeightsError) as err:
        load_syncnet(s3fd_weights)
    msg = str(err.value)
    assert str(s3fd_weights) in msg and "\n" not in msg
    assert "missing keys" in msg and "netcnnaud.0.weight" in msg
    assert "65 unexpected keys" in msg and "L2Norm3_3.weight" in msg


def test_truncated_file(syncnet_weights, tmp_path):
    cut = tmp_path / "cut.model"
    data = syncnet_weights.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(WeightsError, match=r"cut\.model is not a readable SyncNet weights file"):
        load_syncnet(cut)


def test_text_file(tmp_path):
    text = tmp_path / "syncnet_v2.model"
    text.write_text("<html>404 Not Found</html>\n")
    with pytest.raises(WeightsError, match="not a readable SyncNet weights file"):
        load_syncnet(text)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match=r"not found at .*nothing\.model: get syncnet_v2\.model"):
        load_syncnet(tmp_path / "nothing.model")


# --- where the weights are found -------------------------------------------------------------

@pytest.fixture
def places(tmp_path, monkeypatch):
    """An empty world: working directory, repository, home and cache all under tmp_path."""
    cwd, repo, home, cache = (tmp_path / n for n in ("cwd", "repo", "home", "xdg"))
    for d in (cwd, repo, home, cache):
        d.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(W, "REPO_ROOT", repo)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv(W.SYNCNET.env, raising=False)
    return {"cwd": cwd, "repo": repo, "home": home, "cache": cache}


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_resolution_order(places, monkeypatch, tmp_path):
    spec = W.SYNCNET
    with pytest.raises(WeightsError, match="not found.*bash download_model.sh.*SYNCNET_MODEL=PATH"):
        resolve_weights(spec)
    cached = _touch(places["cache"] / "syncnet" / spec.filename)
    assert resolve_weights(spec) == cached
    in_repo = _touch(places["repo"] / spec.reference_path)
    assert resolve_weights(spec) == in_repo
    in_cwd = _touch(places["cwd"] / spec.reference_path)
    assert resolve_weights(spec).resolve() == in_cwd.resolve()
    from_env = _touch(tmp_path / "env.model")
    monkeypatch.setenv(spec.env, str(from_env))
    assert resolve_weights(spec) == from_env
    explicit = _touch(tmp_path / "explicit.model")
    assert resolve_weights(spec, explicit) == explicit
    assert resolve_weights(spec, str(explicit)) == explicit


def test_home_cache_without_xdg(places, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    cached = _touch(places["home"] / ".cache" / "syncnet" / W.SYNCNET.filename)
    assert resolve_weights(W.SYNCNET) == cached


def test_downloads_go_to_the_checkout_or_else_the_cache(places):
    """In a checkout, the reference's places; in an installed copy (no pyproject.toml above
    the package), the user cache rather than site-packages."""
    assert W.default_place(W.S3FD) == places["cache"] / "syncnet" / W.S3FD.filename
    _touch(places["repo"] / "pyproject.toml")
    assert W.default_place(W.S3FD) == places["repo"] / W.S3FD.reference_path


def test_named_paths_must_exist(places, monkeypatch, tmp_path):
    _touch(places["repo"] / W.SYNCNET.reference_path)  # present, but must not be used instead
    with pytest.raises(WeightsError, match=r"not found at .*typo\.model \(given explicitly\)"):
        resolve_weights(W.SYNCNET, tmp_path / "typo.model")
    monkeypatch.setenv(W.SYNCNET.env, str(tmp_path / "gone.model"))
    with pytest.raises(WeightsError, match=r"gone\.model \(from SYNCNET_MODEL\)"):
        resolve_weights(W.SYNCNET)


# --- downloads ---------------------------------------------------------------------------------

class FakeResponse(io.BytesIO):
    def __init__(self, body: bytes, length: int | None):
        super().__init__(body)
        self.headers = {} if length is None else {"Content-Length": str(length)}


def _serve(monkeypatch, body: bytes, length: int | None):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: FakeResponse(body, length))


def _no_leftovers(folder: Path):
    assert list(folder.iterdir()) == []


def test_offline_download(monkeypatch, tmp_path):
    def refuse(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    dest = tmp_path / "w" / "syncnet_v2.model"
    with pytest.raises(WeightsError) as err:
        W.download(W.SYNCNET, dest, network=SyncNetModel, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and W.SYNCNET.url in msg and str(dest) in msg and "name resolution" in msg
    _no_leftovers(dest.parent)


@pytest.mark.parametrize("announced", [True, False])
def test_truncated_download(monkeypatch, tmp_path, syncnet_weights, announced):
    data = syncnet_weights.read_bytes()
    _serve(monkeypatch, data[:len(data) // 3], len(data) if announced else None)
    dest = tmp_path / "syncnet_v2.model"
    with pytest.raises(WeightsError, match="stopped after" if announced else "not usable"):
        W.download(W.SYNCNET, dest, network=SyncNetModel, progress=False)
    _no_leftovers(tmp_path)


def test_wrong_file_downloaded(monkeypatch, tmp_path, s3fd_weights):
    data = s3fd_weights.read_bytes()
    _serve(monkeypatch, data, len(data))
    with pytest.raises(WeightsError, match="does not hold SyncNet weights"):
        W.download(W.SYNCNET, tmp_path / "syncnet_v2.model", network=SyncNetModel, progress=False)
    _no_leftovers(tmp_path)


def test_complete_download(monkeypatch, tmp_path, syncnet_weights):
    data = syncnet_weights.read_bytes()
    _serve(monkeypatch, data, len(data))
    dest = W.download(W.SYNCNET, tmp_path / "deep" / "syncnet_v2.model", network=SyncNetModel,
                      progress=False)
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["syncnet_v2.model"]


def test_s3fd_download_is_checked_against_its_network(monkeypatch, tmp_path, s3fd_weights):
    data = s3fd_weights.read_bytes()
    _serve(monkeypatch, data, len(data))
    dest = W.download(W.S3FD, tmp_path / "sfd_face.pth", network=S3FDNet, progress=False)
    assert dest.read_bytes() == data


def test_cli_ensure_does_nothing_when_found(monkeypatch, tmp_path, capsys, syncnet_weights, s3fd_weights):
    monkeypatch.setenv(W.SYNCNET.env, str(syncnet_weights))
    monkeypatch.setenv(W.S3FD.env, str(s3fd_weights))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(SystemExit) as code:
        cli.entry(["ensure", "--dest", str(tmp_path)])
    assert code.value.code == 0
    assert str(syncnet_weights) in capsys.readouterr().out


def test_cli_download_offline_exits_2_with_one_line(monkeypatch, tmp_path, capsys):
    def refuse(url, timeout=None):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(SystemExit) as code:
        cli.entry(["download", "--dest", str(tmp_path), "-q"])
    assert code.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "syncnet_v2.model" in err and str(tmp_path) in err
    _no_leftovers(tmp_path)


def test_cli_ensure_fetches_only_what_is_missing(places, monkeypatch, tmp_path, capsys, syncnet_weights,
                                                 s3fd_weights):
    monkeypatch.setenv(W.SYNCNET.env, str(syncnet_weights))
    monkeypatch.delenv(W.S3FD.env, raising=False)
    asked = []

    def serve(url, timeout=None):
        asked.append(url)
        data = s3fd_weights.read_bytes()
        return FakeResponse(data, len(data))

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    dest = tmp_path / "fetched"
    with pytest.raises(SystemExit) as code:
        cli.entry(["ensure", "--dest", str(dest), "-q"])
    assert code.value.code == 0
    assert asked == [W.S3FD.url]
    assert [p.name for p in dest.iterdir()] == [W.S3FD.filename]
    assert str(syncnet_weights) in capsys.readouterr().out


def test_module_command_still_runs(tmp_path, syncnet_weights, s3fd_weights):
    """`python -m syncnet.weights` (README, quickstart.sh, download_model.sh) reaches the command line's command."""
    import os
    import subprocess
    import sys

    env = {**os.environ, W.SYNCNET.env: str(syncnet_weights), W.S3FD.env: str(s3fd_weights)}
    proc = subprocess.run([sys.executable, "-m", "syncnet.weights", "where"], env=env, cwd=Path(W.__file__).parents[2],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"SyncNet: {syncnet_weights}", f"S3FD: {s3fd_weights}"]
    proc = subprocess.run([sys.executable, "-m", "syncnet.weights", "fetch"], env=env,
                          cwd=Path(W.__file__).parents[2], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("python -m syncnet.weights: error: "), proc.stderr
