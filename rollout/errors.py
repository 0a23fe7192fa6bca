"""One exception root for everything a user can get wrong.

Each subclass names a kind of mistake; the message is one line that says what is wrong and,
where it helps, what to do. Entry points catch `RolloutError`, print the message and exit 2.
"""

from __future__ import annotations


class RolloutError(Exception):
    """A problem the user can fix: bad input, a missing file, a port in use."""


class MessageDefinitionError(RolloutError):
    """A `.msg`/`.srv` definition is malformed or refers to an unknown type."""


class UnknownTypeError(MessageDefinitionError):
    """A message type that no definition on the search path provides."""


class SerializationError(RolloutError):
    """Bytes that do not decode as the message type they claim to be, or a value that cannot be encoded."""


class ParameterError(RolloutError):
    """An unknown parameter, a malformed `name:=value`, or a value of the wrong type."""


class TransportError(RolloutError):
    """The middleware could not start or reach its peers."""


class PortInUseError(TransportError):
    """A TCP port we were asked to listen on is taken."""

    def __init__(self, port: int, what: str = "server") -> None:
        super().__init__(f"port {port} is already in use; stop the other {what} or choose another port")
        self.port = port


class ServiceError(RolloutError):
    """A service call failed or timed out."""


class LaunchError(RolloutError):
    """An unknown node or launch file, or a bad launch argument."""


class BagError(RolloutError):
    """A bag that is missing, corrupt, truncated, or not a rollout recording."""


class PolicyError(RolloutError):
    """A checkpoint that cannot be loaded or does not fit the env."""


class EnvError(RolloutError):
    """An env factory that cannot be found or that does not follow the vector-env protocol."""


class ResourceError(RolloutError):
    """A size (from a file or a parameter) that would need more memory than the machine has."""
