"""Operations: Prometheus metrics (``metrics``), structured logs (``logging``), and the ASGI
middleware that measures and logs every request (``middleware``).

Nothing here holds global state: each app builds its own ``Metrics`` (with its own
``CollectorRegistry``), so tests can build as many apps as they like.
"""
