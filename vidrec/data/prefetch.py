"""Batches onto the training device ahead of use: reading and copying overlap the compute.

On CUDA a reader thread fetches batch i+1 from the loader (ClipDataset reads with os.preadv, which
releases the GIL, into page-locked memory: see ClipDataset.pin) while the main thread queues the
kernels of step i; each batch's copy goes on a side stream, and the compute stream waits for it on
the device, never the host. Elsewhere (CPU) the batches pass through unchanged, in order.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import torch


class DeviceFeed:
    """Iterate `loader`'s dict batches with every tensor already on `device` (non-blocking copies)."""

    def __init__(self, loader: Iterable[dict], device: torch.device):
        self.loader, self.device = loader, torch.device(device)

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[dict]:
        if self.device.type != "cuda":
            yield from (self._send(b) for b in self.loader)
            return
        side = torch.cuda.Stream(self.device)
        compute = torch.cuda.current_stream(self.device)
        batches = iter(self.loader)
        with ThreadPoolExecutor(1, thread_name_prefix="vidrec-feed") as reader:
            pending = reader.submit(next, batches, None)
            while (host := pending.result()) is not None:
                pending = reader.submit(next, batches, None)  # batch i+1 is read while step i runs
                with torch.cuda.stream(side):
                    current = self._send(host)
                compute.wait_stream(side)  # a device-side wait: the host runs on
                for t in current.values():
                    if isinstance(t, torch.Tensor) and t.is_cuda:
                        t.record_stream(compute)  # its memory is not reused before the step reading it ends
                yield current

    def _send(self, batch: dict | None) -> dict | None:
        if batch is None:
            return None
        return {k: self._to_device(v) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda" and t.device.type == "cpu" and not t.is_pinned():
            t = t.pin_memory()  # a copy from pageable memory would wait for the device to drain
        return t.to(self.device, non_blocking=True)
