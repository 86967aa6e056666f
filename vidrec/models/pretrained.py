"""Published weights by name: `init_from: torchvision:<Weights>.<NAME>` (issue 17, part 4).

torchvision's weights API resolves the name (`torchvision.models.get_weight`) and torch.hub fetches
its file into torch's own cache, $TORCH_HOME/hub/checkpoints/ (default ~/.cache/torch): downloaded
once, reused by every later run. Without network the file must already be there; the error names it
and the address to fetch it from. Which architecture takes which weights is the catalogue's fact
(`Card.torchvision_weights`): only networks with torchvision's module layout at base_width 64 do.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

import torch

from vidrec.plan.catalogue import TORCHVISION_SCHEME
from vidrec.core.errors import VidrecError


class PretrainedError(VidrecError):
    """Named weights are unknown, do not fit the architecture, or are not in the cache."""


def _weights(name: str):
    from torchvision.models import get_weight

    try:
        return get_weight(name)
    except (ValueError, KeyError, AttributeError) as err:
        raise PretrainedError(f"init_from '{TORCHVISION_SCHEME}{name}': torchvision has no weights of that name ({err}); "
                              f"name a member of a weights enum, e.g. {TORCHVISION_SCHEME}R2Plus1D_18_Weights.KINETICS400_V1") from None


def weights_file(name: str) -> Path:
    """Where torch.hub keeps (or will keep) the file of torchvision's weights `name`."""
    url = _weights(name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def load_weights(name: str) -> dict[str, torch.Tensor]:
    """The state_dict of torchvision's weights `name`, from the hub cache (downloaded there if absent)."""
    weights = _weights(name)
    path = weights_file(name)
    try:
        state = weights.get_state_dict(progress=False, weights_only=True, map_location="cpu")
    except (URLError, TimeoutError, ConnectionError) as err:
        raise PretrainedError(
            f"{path}: the weights {TORCHVISION_SCHEME}{name} are not in torch's cache and could not be downloaded ({err}). "
            f"On a machine with network, fetch {weights.url} and put it at that path (the cache is "
            "$TORCH_HOME/hub/checkpoints/, default ~/.cache/torch/hub/checkpoints/), then rerun") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise PretrainedError(f"{path}: cannot read the cached weights {TORCHVISION_SCHEME}{name} ({err}); delete the file "
                              f"and fetch {weights.url} again") from None
    if not isinstance(state, dict):
        raise PretrainedError(f"{path}: not a state_dict (a {type(state).__name__}); fetch {weights.url} again")
    return state
