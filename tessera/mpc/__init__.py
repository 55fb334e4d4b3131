"""The MPC layer: :class:`Session` and :class:`SecretTensor`, independent of the protocol."""

from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor, concatenate, stack

__all__ = ["Session", "SecretTensor", "concatenate", "stack"]
