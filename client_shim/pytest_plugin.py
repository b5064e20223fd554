"""pytest plugin (entry point ``pytest11``); built out in the client_shim work."""
