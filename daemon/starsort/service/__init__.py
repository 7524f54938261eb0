"""The service process: the deciding thread's loop, and its retry policy."""
from .loop import Service
from .retry import CRASH_ATTEMPTS, ERROR_ATTEMPTS

__all__ = ["CRASH_ATTEMPTS", "ERROR_ATTEMPTS", "Service"]
