"""The hosting contract as pure code: calendars, indicators, clocks, tickets, compliance.

No I/O and no clock reads here: every time is a parameter, every datetime is aware.
"""
