"""aiostack: a user-space TCP/IP stack for Python, one uvloop reactor per core over poll-mode drivers."""

__version__ = "0.1.0"
