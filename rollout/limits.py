"""How much memory a size that an input declares may claim, checked before anything is allocated.

Sizes come from files and parameters (a chunk's uncompressed size, an `.npy` header, a CDR
sequence length, `num_envs`); a wrong or hostile one must end in one clear line, not in a
MemoryError traceback or a machine swapping itself to death. The budget is half of what the
machine has available (MemAvailable, or the address-space limit if one is set), or
`ROLLOUT_MEMORY_LIMIT` bytes when that is set.
"""

from __future__ import annotations

import os
import resource

from rollout.errors import ResourceError, RolloutError

FRACTION = 0.5


def available_memory() -> int:
    """Bytes this process could still allocate: MemAvailable, capped by RLIMIT_AS."""
    avail = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if not avail:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        avail = min(avail, soft)
    return avail


def memory_budget() -> int:
    """Bytes one input may make us allocate."""
    forced = os.environ.get("ROLLOUT_MEMORY_LIMIT", "").strip()
    if forced.isdigit():
        return int(forced)
    return int(available_memory() * FRACTION)


def size_text(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_allocation(nbytes: float, what: str, error: type[RolloutError] = ResourceError) -> None:
    """Raise `error` when `what` (needing `nbytes`) does not fit the memory budget."""
    budget = memory_budget()
    if nbytes > budget:
        raise error(f"{what} would need {size_text(nbytes)} of memory; the limit here is {size_text(budget)}")


def check_declared(count: int, item_size: int, available_bytes: int, what: str, error: type[RolloutError]) -> None:
    """Raise `error` when `count` items of `item_size` bytes, as an input declares, are more than
    the `available_bytes` that are supposed to carry them (a count a file cannot back)."""
    if count < 0 or count * item_size > available_bytes:
        raise error(f"{what} declares {count} items of {item_size} bytes, but only {available_bytes} bytes follow")
