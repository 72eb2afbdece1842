"""Pure-Python wire protocol of the Petnet SmartFeeder v2 (Arrow Connect / Konexios).

Nothing in this package imports Home Assistant: it turns bytes from the feeder into typed values
and typed values into the exact bytes the feeder expects, so it can be tested on its own.
"""
