"""Sim/policy node: steps N parallel envs with a policy in the loop and publishes every step.

Publishes /rollout/state, /rollout/action, /rollout/reward_terms, /rollout/episodes,
/rollout/base_poses (PoseArray), /tf for `tf_envs`, and, latched, /rollout/robot and
/robot_description (URDF). Service /sim/set_policy_enabled (std_srvs/SetBool) switches the
policy off (zero actions) and on again while running. With `namespace:=rank0` all of them
move under /rank0 (one sim per rank or host in a shared graph).

    rollout run sim --ros-args -p num_envs:=16 -p policy:=policy.pt2 -p steps:=500
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rollout import topics
from rollout.errors import ParameterError
from rollout.messages import LATCHED_TOPICS, RolloutMessages, RunIdentity
from rollout.policy import ENV_POLICY, policy_for_env
from rollout.runtime import LATCHED, LOSSLESS, Node, ok, run_node, shutdown
from rollout.runtime.params import parse_env_ids
from rollout.sim import DEFAULT_ENV, make_env, run_steps
from rollout.sim.protomotions.checkpoint import is_checkpoint_spec


@dataclass(frozen=True)
class SimParams:
    env: str = DEFAULT_ENV
    """Env to step: "mujoco:Humanoid-v5" (default), "gym:<id>", "protomotions:<last.ckpt>" (a ProtoMotions
    checkpoint, its agent as the policy), or "module:factory" for your own."""
    num_envs: int = 16
    """N, parallel envs."""
    seed: int = 0
    """Reset seed; the same seed and policy give the same rollout."""
    policy: str = "random"
    """A .pt2 (torch.export), a state_dict .pt with its JSON config, TorchScript, "module:callable",
    a built-in: "demo" (the shipped humanoid walker), "zero", "random", or "checkpoint": the env's own
    agent (a protomotions: env uses it unless another policy is named)."""
    trust_checkpoint: bool = False
    """Load a ProtoMotions checkpoint (a pickle: loading it runs code from the file); only for files you trust."""
    simulator: str = ""
    """ProtoMotions simulator backend for a checkpoint env ("": the one it was trained with; e.g. mujoco)."""
    policy_config: str = ""
    """JSON config for a state_dict checkpoint (default: the .json beside it)."""
    steps: int = 0
    """Control steps to run, then exit (0: until stopped)."""
    duration: float = 0.0
    """Seconds of simulated time to run, then exit (0: until stopped); `steps` wins if both are set."""
    realtime: bool = False
    """Pace steps at the env's dt instead of as fast as possible."""
    tf_envs: str = "0"
    """Envs drawn in Foxglove through /tf and /robot_description, e.g. "0,1,2" (empty: none)."""
    wait_for_subscribers: int = 0
    """Before the first step, wait until this many subscribers (e.g. the recorder) take /rollout/state."""
    wait_timeout: float = 30.0
    """Seconds to wait for those subscribers before giving up."""
    torch_threads: int = 1
    """Torch threads for the policy (one is fastest on small machines)."""
    namespace: str = ""
    """Publish every topic and the service under this namespace, e.g. "rank0" gives /rank0/rollout/state:
    sims sharing a graph (training ranks, hosts) stay apart, and bags of several read as one rollout."""


def tf_env_ids(text: str, num_envs: int) -> list[int]:
    """The `tf_envs` parameter as env ids, every one below `num_envs`."""
    ids = parse_env_ids(text, "tf_envs")
    bad = [k for k in ids if k >= num_envs]
    if bad:
        raise ParameterError(f"tf_envs: env {bad[0]} does not exist: there are {num_envs} envs (0..{num_envs - 1})")
    return ids


def checkpoint_options(p: SimParams) -> dict[str, object]:
    """What a checkpoint env needs besides its path (nothing for other envs)."""
    return {"trust": p.trust_checkpoint, "simulator": p.simulator} if is_checkpoint_spec(p.env) else {}


def own_policy_spec(env: object, policy: str) -> str:
    """An env that came with a policy (a checkpoint's agent) runs it unless another is named."""
    if getattr(env, "policy", None) is not None and policy == SimParams.policy:
        return ENV_POLICY
    return policy


def step_budget(p: SimParams, dt: float) -> int | None:
    """Steps to run: `steps`, else `duration` / dt, else None (until stopped)."""
    if p.steps < 0 or p.duration < 0:
        raise ParameterError("steps and duration must not be negative")
    if p.steps:
        return p.steps
    if p.duration:
        return max(1, round(p.duration / dt))
    return None


class Sim(Node):
    def __init__(self, args: list[str] | None = None) -> None:
        super().__init__("sim", params=SimParams, cli_args=args)
        p: SimParams = self.params
        if p.num_envs < 1:
            raise ParameterError(f"num_envs must be at least 1, got {p.num_envs}")
        self.env = make_env(p.env, num_envs=p.num_envs, seed=p.seed, **checkpoint_options(p))
        info = self.env.info
        spec = own_policy_spec(self.env, p.policy)
        self.policy = policy_for_env(self.env, spec, seed=p.seed, threads=p.torch_threads, config=p.policy_config or None)
        self.budget = step_budget(p, info.dt)
        identity = RunIdentity(seed=p.seed, policy=self.policy.name, policy_sha256=self.policy.sha256)
        self.messages = RolloutMessages(info, identity, tf_envs=tf_env_ids(p.tf_envs, p.num_envs))
        self.pubs = {
            topic: self.create_publisher(
                type_name, topics.namespaced(topic, p.namespace), LATCHED if topic in LATCHED_TOPICS else LOSSLESS
            )
            for topic, type_name in self.messages.topic_types.items()
        }
        self.policy_enabled = True
        service = topics.namespaced(topics.POLICY_ENABLED_SERVICE, p.namespace)
        self.create_service("std_srvs/srv/SetBool", service, self.on_set_policy)
        for topic, data in self.messages.latched(time.time_ns()):
            self.pubs[topic].publish(data)
        if p.wait_for_subscribers:
            self.wait_for_takers(p.wait_for_subscribers, p.wait_timeout)
        self.steps = run_steps(self.env, self.policy, seed=p.seed, steps=self.budget, policy_enabled=lambda: self.policy_enabled)
        self.done = 0
        self.started = time.monotonic()
        self.get_logger().info(
            f"{info.name}: {info.num_envs} envs, obs {info.obs_dim}, act {info.act_dim}, policy {self.policy.name}, "
            f"{self.budget or 'unlimited'} steps"
        )
        if p.realtime:
            self.create_timer(info.dt, self.step_once)
        else:
            self.call_soon(self.step_and_continue)

    def wait_for_takers(self, count: int, timeout: float) -> None:
        """Wait for `count` subscribers on /rollout/state; a recorder takes the other topics in the
        same breath, so give those a moment too, without requiring them (a viewer may not)."""
        if not self.pubs[topics.STATE].wait_for_subscribers(count, timeout):
            if not ok():
                return  # stopped while waiting
            raise ParameterError(f"no {count} subscriber(s) on {self.pubs[topics.STATE].topic_name} within {timeout:g} s")
        deadline = time.monotonic() + 1.0
        for topic, pub in self.pubs.items():
            if topic not in LATCHED_TOPICS:
                pub.wait_for_subscribers(count, max(0.0, deadline - time.monotonic()))
        time.sleep(0.2)  # let the subscriptions' routes settle before the first message

    def on_set_policy(self, request: object, response: object) -> object:
        self.policy_enabled = bool(request.data)  # type: ignore[attr-defined]
        response.success = True  # type: ignore[attr-defined]
        response.message = f"policy {'on' if self.policy_enabled else 'off'}"  # type: ignore[attr-defined]
        self.get_logger().info(response.message)  # type: ignore[attr-defined]
        return response

    def step_once(self) -> bool:
        rec = next(self.steps, None)
        if rec is None:
            elapsed = time.monotonic() - self.started
            self.get_logger().info(
                f"done: {self.done} steps x {self.env.info.num_envs} envs in {elapsed:.1f} s "
                f"({self.done * self.env.info.num_envs / max(elapsed, 1e-9):.0f} env-steps/s)"
            )
            shutdown()
            return False
        stamp = time.time_ns()
        for topic, data in self.messages.step(rec, stamp):
            self.pubs[topic].publish(data)
        self.done += 1
        return True

    def step_and_continue(self) -> None:
        if self.step_once():
            self.call_soon(self.step_and_continue)  # services still get their turn

    def destroy_node(self) -> None:
        self.env.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(Sim, args)


if __name__ == "__main__":
    main()
