"""The client side: what runs in the user's process.

SDK clients wired to a running proxy (``clients``), the environment helper for code
that builds its own client (``env``), and the in-process proxy: the proxy app called
through an ASGI transport, no port and no server (``inprocess``, ``loop``,
``transports``, ``misses``). ``client_shim`` and ``seedtape`` re-export the public
names.
"""
