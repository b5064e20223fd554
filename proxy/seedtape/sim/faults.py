"""The simulator's network faults, shared by its HTTP and Realtime sides."""

from __future__ import annotations


class SimulatedReset(ConnectionResetError):
    """Raised inside a response body to drop the connection like a network reset."""
