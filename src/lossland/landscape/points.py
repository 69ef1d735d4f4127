"""Points of a landscape: ``origin + coeffs[p] @ directions`` in a model's state space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch


@dataclass
class _Points:
    """Points ``origin + coeffs[p] @ directions`` of a model's state space."""

    origin: dict[str, torch.Tensor]
    directions: list[dict[str, torch.Tensor]]
    coeffs: torch.Tensor  # (points, directions), float64 on the CPU

    @property
    def varying(self) -> list[str]:
        keys = set().union(*(d.keys() for d in self.directions)) if self.directions else set()
        return [k for k in self.origin if k in keys and self.origin[k].is_floating_point()]

    def writer(self, target: Mapping[str, torch.Tensor], keys: Sequence[str]) -> Callable[..., None]:
        """``write(c)`` sets the tensors ``target[k]`` (in place) to the point with
        coefficients ``c``: python floats, or a device tensor (read on the device,
        as a CUDA graph needs). A few multi-tensor kernels per point, not one per tensor."""
        targets = [target[k] for k in keys]
        origin = [self.origin[k] for k in keys]
        groups = []  # (direction, dtype, targets, direction tensors)
        for j, d in enumerate(self.directions):
            by_dtype: dict[torch.dtype, tuple[list, list]] = {}
            for k in keys:
                if k in d:
                    ts, ds = by_dtype.setdefault(target[k].dtype, ([], []))
                    ts.append(target[k])
                    ds.append(d[k])
            groups += [(j, dt, ts, ds) for dt, (ts, ds) in by_dtype.items()]

        def write(c) -> None:
            torch._foreach_copy_(targets, origin)
            if isinstance(c, torch.Tensor):
                cs = {dt: c.to(dt) for dt in {g[1] for g in groups}}
                for j, dt, ts, ds in groups:
                    torch._foreach_add_(ts, torch._foreach_mul(ds, cs[dt][j]))
            else:
                for j, _, ts, ds in groups:
                    if c[j] != 0.0:
                        torch._foreach_add_(ts, ds, alpha=c[j])
        return write

    def stacked(self, ps: Sequence[int], keys: Sequence[str]) -> dict[str, torch.Tensor]:
        """``{k: tensor (len(ps), *shape)}`` of the points ``ps``."""
        c = self.coeffs[list(ps)]
        out = {}
        for k in keys:
            o = self.origin[k]
            v = o.unsqueeze(0).repeat(len(ps), *([1] * o.dim()))
            for j, d in enumerate(self.directions):
                if k in d:
                    cj = c[:, j].to(device=o.device, dtype=o.dtype).view(-1, *([1] * o.dim()))
                    v.add_(cj * d[k])
            out[k] = v
        return out

