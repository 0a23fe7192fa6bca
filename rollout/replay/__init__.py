"""Replay: what to publish when from a recorded bag, and the timeline a viewer plots. No middleware.

    from rollout.bag import Bag
    from rollout.replay import Player, timeline

    with Bag("rollouts/run1") as bag:
        tl = timeline(bag)                  # rollout_msgs/Timeline: reward series, episode ends
        player = Player(bag, rate=1.0, start_paused=True)
        player.seek_step(120)               # paused: hands out step 120 (and the latched topics)
        for item in player.due():           # Item(topic, data=CDR bytes, log_time, latched)
            ...
        player.resume(); player.set_rate(2.0); player.seek_episode(3, +1)
        print(player.status())              # PlayerStatus: step, paused, rate, progress, finished

`Player` follows the rosbag2 player (pause/resume/toggle, set_rate, seek, play_next, burst,
loop, start offset, topic filter) with an injectable clock; `nodes/replay.py` puts it on the
graph with rosbag2's services under /replay/. `timeline(bag, env_ids)` bounds its per-env
series to the first `MAX_ENVS` (64) envs unless told which envs to cover.
"""

from rollout.replay.player import MAX_RATE, MIN_RATE, Item, Player, PlayerStatus, episode_ends, episode_events, rate_error
from rollout.replay.timeline import MAX_ENVS, default_env_ids, timeline, timeline_arrays

__all__ = [
    "MAX_ENVS",
    "MAX_RATE",
    "MIN_RATE",
    "Item",
    "Player",
    "PlayerStatus",
    "default_env_ids",
    "episode_ends",
    "episode_events",
    "rate_error",
    "timeline",
    "timeline_arrays",
]
