"""The commands off the request path: listing, pruning, import, probe, demo, serve.

Each is a module the CLI (``seedtape.cli``) calls into; none is imported by the proxy
while it answers requests.
"""
