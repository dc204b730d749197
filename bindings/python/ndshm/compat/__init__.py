"""Drop-in replacements for the APIs of the tools ndshm replaces.

* ``ndshm.compat.sharedarray``: SharedArray's module API (``import ... as sa``).
* ``ndshm.compat.cdxcore``: cdxcore.npshm's functions.
"""
