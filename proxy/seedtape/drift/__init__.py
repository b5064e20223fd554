"""Drift: comparing a live answer with its recording (``compare``), the drift log
(``log``), word diffs (``worddiff``) and the reports rendered from the log (``report``).

Verify mode imports ``compare`` and ``log``; ``report`` is for the ``seedtape report``
command only.
"""
