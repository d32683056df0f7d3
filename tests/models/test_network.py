"""The U-Net's module tree must give the published state_dict keys and load them strictly."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.models.unet.model import load_network, read_checkpoint
from deepcac2.pipeline.models.unet.network import UNet3D


def published_layout(features=(64, 128, 256, 512), generator=None) -> OrderedDict:
    """The published key names and shapes, written out from the spec (FACTS.md section 1), random values."""

    def double(prefix, cin, cout, out):
        for conv, bn, c_in in ((0, 1, cin), (3, 4, cout)):
            out[f"{prefix}.conv.{conv}.weight"] = (cout, c_in, 3, 3, 3)
            for name in ("weight", "bias", "running_mean", "running_var"):
                out[f"{prefix}.conv.{bn}.{name}"] = (cout,)
            out[f"{prefix}.conv.{bn}.num_batches_tracked"] = ()

    shapes: OrderedDict = OrderedDict()
    cin = 1
    for i, f in enumerate(features):
        double(f"downs.{i}", cin, f, shapes)
        cin = f
    for level, f in enumerate(reversed(features)):
        shapes[f"ups.{2 * level}.weight"] = (2 * f, f, 2, 2, 2)  # ConvTranspose3d: (in, out, k, k, k)
        shapes[f"ups.{2 * level}.bias"] = (f,)
        double(f"ups.{2 * level + 1}", 2 * f, f, shapes)
    double("bottleneck", features[-1], 2 * features[-1], shapes)
    shapes["final_conv.weight"] = (1, features[0], 1, 1, 1)
    shapes["final_conv.bias"] = (1,)
    state = OrderedDict()
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            state[k] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[k] = torch.randn(shape, generator=generator) * 0.05
    return state


def test_module_tree_has_exactly_the_published_keys_and_shapes():
    expected = published_layout(generator=torch.Generator().manual_seed(0))
    got = UNet3D().state_dict()
    assert list(got) == list(expected)
    assert {k: tuple(v.shape) for k, v in got.items()} == {k: tuple(v.shape) for k, v in expected.items()}
    # the published convolutions have no bias
    assert "downs.0.conv.0.bias" not in got and "ups.1.conv.3.bias" not in got


@pytest.mark.parametrize(
    ("wrap", "features"),
    [("bare", (64, 128, 256, 512)), ("state_dict", (4, 8, 16, 32)), ("model", (4, 8, 16, 32))],
)
def test_published_state_dict_loads_strictly(tmp_path, wrap, features):
    """The published file is a bare state_dict (the MHub code: load_state_dict(torch.load(path)))."""
    state = published_layout(features, generator=torch.Generator().manual_seed(1))
    obj = state if wrap == "bare" else {wrap: state, "epoch": 3}
    path = tmp_path / "vivid-haze-6_model.pt"
    torch.save(obj, path)
    loaded, _ = read_checkpoint(str(path))
    net = load_network(loaded)
    assert net.features == features
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_output_shape_and_skip_order_small_variant():
    torch.manual_seed(0)
    net = UNet3D(features=(4, 8, 16, 32)).eval()
    x = torch.rand(2, 1, 64, 64, 16)
    with torch.inference_mode():
        y = net(x)
    assert y.shape == (2, 1, 64, 64, 16)
    # concatenation order (skip, upsampled): the first in_channels of the last decoder conv see the skip
    last = net.ups[-1].conv[0]
    assert last.in_channels == 2 * 4


def test_wrong_layout_and_garbage_are_model_load_errors(tmp_path):
    state = published_layout(features=(4, 8, 16, 32))
    state.pop("final_conv.bias")
    with pytest.raises(DeepCACError) as err:
        load_network(state)
    assert err.value.code is ErrorCode.E_MODEL_LOAD
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DeepCACError) as err:
        read_checkpoint(str(junk))
    assert err.value.code is ErrorCode.E_MODEL_LOAD
    with pytest.raises(DeepCACError) as err:
        read_checkpoint(str(tmp_path / "missing.pt"))
    assert err.value.code is ErrorCode.E_MODEL_LOAD
