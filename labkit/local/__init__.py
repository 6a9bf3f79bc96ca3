"""The embedded local AWS: moto for API state, plus one engine module per service that does the work.

Every module in this package that defines ``install()`` is an engine; ``server.install_engines``
imports them all and calls ``install()`` once per process, which patches moto at its hook point.
"""
