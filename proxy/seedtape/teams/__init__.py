"""Teams: a fleet of proxies sharing recordings, locks and counters through Redis.

``--store redis://...`` adds, next to the cassette folder (still the source of truth
for git), a shared copy every proxy of a namespace reads after a local miss and writes
after a local save. The engine reaches all of it through one object, :class:`Team`
(``team.py``); the rest of this folder is one concept per module:

* ``url``: store URLs and namespaces, and the URL printed with its password masked;
* ``keys``: every Redis key name, under ``seedtape:<namespace>:``;
* ``codec``: a recording as a Redis value (the cassette file's text, compressed) and
  how a local file and the shared copy merge;
* ``client``: the redis-py asyncio client with bounded timeouts;
* ``health``: degraded / recovered, said once each, and the probe that notices recovery;
* ``locks``: fleet-wide key locks (token, expiry, owner-only release);
* ``coordinator``: the ``Coordinator`` protocol over Redis (fleet single-flight, shared
  session counters), falling back to the local coordinator when Redis is away;
* ``recordings``: read-through lookups and write-through publishing;
* ``stats`` and ``drift``: fleet statistics and the team's drift log (a Redis stream);
* ``admin``: the store's part of the admin routes (imports no redis).

Importing the package imports nothing: redis is loaded only when a store is configured.
"""
