"""Every test session gets its own zenoh router port, so parallel runs and stray nodes never meet."""

import os
from ports import free_port


# Set at import, before any test opens a session; node processes started by tests inherit it.
os.environ["ROLLOUT_ROUTER"] = f"tcp/127.0.0.1:{free_port()}"
