"""aiostack: a user-space TCP/IP stack for Python, one uvloop reactor per core over poll-mode drivers.

The asyncio-compatible entry points (``start_server``, ``open_connection``, ``create_server``,
``create_connection``) use the stack running on the current event loop unless ``stack=`` names
one; :func:`serve` runs a whole server from the standard options. :func:`new_event_loop`,
:class:`EventLoopPolicy` and :func:`run` (shaped like uvloop's) give unmodified asyncio
applications a loop whose network calls go through aiostack (:mod:`aiostack.loop`).
"""

from . import build as build  # first: with AIOSTACK_NO_EXTENSIONS=1 it selects the pure build
from .loop import EventLoopPolicy, Loop, new_event_loop, run
from .network import open_network, serve
from .protocols import create_connection, create_server
from .stack import Stack, current_stack
from .streams import open_connection, start_server

__version__ = "0.1.0"

__all__ = [
    "EventLoopPolicy",
    "Loop",
    "Stack",
    "create_connection",
    "create_server",
    "current_stack",
    "new_event_loop",
    "open_connection",
    "open_network",
    "run",
    "serve",
    "start_server",
]
