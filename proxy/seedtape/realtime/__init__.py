"""Realtime API: WebSocket sessions recorded and replayed event for event.

``gateway``    every WebSocket the proxy is asked for: checks, then the mode decides
``session``    one session through the proxy and the operations modes pick from
``handshake``  the Realtime paths and what a handshake contributes to the key
``events``     client events in their stored and matched form, audio digests
``tape``       the session recording format (one episode) and its replay form
``index``      recorded sessions by handshake: the prelude sent before the key is known
``upstream``   the WebSocket to the service (``websockets``), or the simulator in process
``verify``     transcripts assembled and compared by the HTTP drift classes
"""
