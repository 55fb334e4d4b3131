"""Channels between endpoints: the interface, an in-memory mesh, and mutual TLS over TCP.

Modules, each with one job (in import order; this layer imports nothing else from Tessera
but :mod:`tessera.errors`):

* :mod:`~tessera.net.channel`   the :class:`Channel` interface (``send``/``recv``/``abort``) and byte counts
* :mod:`~tessera.net.memory`    endpoints as threads of one process (unit tests, notebooks)
* :mod:`~tessera.net.identity`  a party's Ed25519 key and self-signed certificate, fingerprints
* :mod:`~tessera.net.framing`   length-prefixed frames: header, validation, a frame reader
* :mod:`~tessera.net.pinning`   TLS 1.3 contexts that trust exactly the pinned certificate
* :mod:`~tessera.net.link`      one authenticated connection: locked sender, receiver thread
* :mod:`~tessera.net.handshake` setting up one connection: introduction, TLS, pin check, HELLO
* :mod:`~tessera.net.tls`       the full mesh: :func:`connect_mesh` -> :class:`TlsChannel`

Nothing is imported here: import the module you need.
"""
